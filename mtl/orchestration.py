"""What the Airflow DAGs need from the pipeline, as plain functions: the trigger form, each run's
workspace with its params, and the retraining window's fingerprint.

The DAG files import this module while the scheduler parses them, so at module level it imports
only the standard library, PyYAML, the typed config (pydantic, which Airflow has loaded already)
and the name registries (no torch, pandas, numpy, MLflow, DVC). Every setting is read through
the typed config, so the DAGs and the stages see the same defaults.

A run's form values override params.yaml for that run only: `open_run` validates them and makes
the run's workspace (mtl/workspaces.py) with the merged params.yaml, so that DVC sees, records in
the workspace's dvc.lock and reruns exactly what the run used, while the project's own file is
never written and other runs go on beside it.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl.config import AirflowConfig, Config
from mtl.names import ARCHITECTURES, WEIGHTINGS
from mtl.runstate import STATE_DIR


# gate strictness offered in the form: how each mode rewrites the gate section for the run
GATE_MODES = {
    "as_configured": "the gate section of params.yaml as it is",
    "strict": "every allowed regression halved, and an improvement over the champion required",
    "relaxed": "every allowed regression doubled, no improvement required (floors still hold)",
}


def read_params(root: Path) -> dict:
    """The project's params.yaml as written."""
    from mtl.config import read_raw

    return read_raw(Path(root) / "params.yaml")


def read_config(root: Path) -> Config:
    """The project's typed config: what the DAG files read at parse time. A broken params.yaml is
    the DAG's import error, naming the key."""
    from mtl.config import parse_config

    return parse_config(read_params(root), source=str(Path(root) / "params.yaml"))


def form(cfg: Config) -> dict[str, dict]:
    """The trigger form: param name -> keyword arguments of ``airflow.sdk.Param``, with
    params.yaml's values as defaults. Described as data so the DAG stays a thin shell."""
    task_names = [t.name for t in cfg.tasks]
    return {
        "architecture": dict(
            default=cfg.model.architecture, type="string", enum=sorted(ARCHITECTURES),
            title="Architecture", description="model.architecture: the multi-task network to train"),
        "tasks": dict(
            # `examples` makes Airflow's form a multi-select; `items.enum` makes the API refuse others
            default=task_names, type="array", items={"type": "string", "enum": task_names}, minItems=1,
            examples=task_names, title="Tasks",
            description="Which of params.yaml's tasks to train and gate (default: all)"),
        "epochs": dict(
            default=cfg.train.epochs, type="integer", minimum=1, maximum=1000,
            title="Epochs", description="train.epochs: most epochs (early stopping may end sooner)"),
        "weighting": dict(
            default=cfg.train.weighting.method, type="string", enum=sorted(WEIGHTINGS),
            title="Loss balancing", description="train.weighting.method: how the task losses are combined "
            "(task weights apply to static only and are dropped for the others)"),
        "data_source": dict(
            default=cfg.data.source, type="string", minLength=1,
            title="Data source", description="data.source: synthetic, an adapter name (with data.path), or the "
            "path of your parquet/CSV file or folder"),
        "data_path": dict(
            default=cfg.data.path, type=["null", "string"],
            title="Data path", description="data.path: the files an adapter source reads (empty for synthetic "
            "or when the source is itself a path)"),
        "window_days": dict(
            default=cfg.data.window_days, type=["null", "integer"], minimum=1,
            title="Window (days)", description="data.window_days: train on the newest N days of the data "
            "(file sources; empty: all rows)"),
        "gate": dict(
            default="as_configured", type="string", enum=list(GATE_MODES),
            title="Gate strictness", description="; ".join(f"{k}: {v}" for k, v in GATE_MODES.items())),
    }


def _gate_for(mode: str, gate: dict) -> dict:
    if mode not in GATE_MODES:
        raise ValueError(f"gate: unknown strictness {mode!r}; choose one of {list(GATE_MODES)}")
    if mode == "as_configured":
        return gate
    scale = 0.5 if mode == "strict" else 2.0
    gate = copy.deepcopy(gate)
    limits = list((gate.get("tasks") or {}).values())
    for rule in (gate.get("slices") or {}).values():  # a limit per metric, and per task
        limits += [rule.get("auc"), rule.get("rmse"), *(rule.get("tasks") or {}).values()]
    for limit in limits:
        if limit and "max_regression" in limit:
            limit["max_regression"] = limit["max_regression"] * scale
    gate["require_improvement"] = mode == "strict"
    return gate


# form field -> the params.yaml key it sets
FORM_KEYS = {"architecture": "model.architecture", "epochs": "train.epochs", "weighting": "train.weighting.method",
             "data_source": "data.source", "data_path": "data.path", "window_days": "data.window_days"}


def overrides(values: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Dotted-key overrides of params.yaml for the form ``values`` (only what differs from it).

    Choices that would leave params.yaml inconsistent are carried through: dropping a task drops
    its gate entry, and a balancing method other than static drops the static task weights.
    Tasks and the gate are written as params.yaml sets them (``exclude_unset``), not with every
    default spelled out.
    """
    unknown = set(values) - set(FORM_KEYS) - {"tasks", "gate"}
    if unknown:
        raise ValueError(f"unknown form field(s) {sorted(unknown)}; the form has {sorted([*FORM_KEYS, 'tasks', 'gate'])}")
    full = cfg.model_dump(mode="json", by_alias=True)
    current = {key: _get(full, key) for key in FORM_KEYS.values()}
    out: dict[str, Any] = {key: values[field] for field, key in FORM_KEYS.items()
                           if field in values and values[field] != current[key]}
    tasks = [t.model_dump(mode="json", by_alias=True, exclude_unset=True) for t in cfg.tasks]
    names = [t["name"] for t in tasks]
    chosen = values.get("tasks") or names
    missing = [n for n in chosen if n not in names]
    if missing:
        raise ValueError(f"tasks: {missing} are not tasks of params.yaml ({names})")
    method = out.get("train.weighting.method", current["train.weighting.method"])
    new_tasks = [dict(t) for t in tasks if t["name"] in chosen]
    if method != "static":
        for t in new_tasks:
            t.pop("weight", None)
    if new_tasks != tasks:
        out["tasks"] = new_tasks
    configured = cfg.gate.model_dump(mode="json", by_alias=True, exclude_unset=True)
    gate = copy.deepcopy(configured)
    if set(chosen) != set(names):
        gate["tasks"] = {k: v for k, v in (gate.get("tasks") or {}).items() if k in chosen}
        for rule in (gate.get("slices") or {}).values():
            if rule and rule.get("tasks"):
                rule["tasks"] = [n for n in rule["tasks"] if n in chosen]
    gate = _gate_for(values.get("gate", "as_configured"), gate)
    if gate != configured:
        out["gate"] = gate
    return out


def _get(tree: dict, dotted: str):
    node = tree
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def open_run(home: Path, dotted: dict[str, Any], run: dict[str, Any]) -> tuple[Path, dict]:
    """Validate the run's params (the project's params.yaml + ``dotted``) and make the run's
    workspace with them; returns (workspace, params). Raises ConfigError (or SourceError) naming
    the bad key; then nothing was made."""
    from mtl import workspaces
    from mtl.config import apply_overrides, parse_config

    params = apply_overrides(read_params(home), dotted)
    cfg = parse_config(params, source=f"params.yaml with this run's overrides {json.dumps(dotted, default=str)}")
    if not cfg.data.is_synthetic:  # a path that does not exist fails here, naming the key and the fix
        from mtl.data.ingest.sources import source_files

        source_files(cfg.data, Path(home))
    root = workspaces.create(Path(home), str(run["run_id"]), params, run | {"overrides": dotted})
    return root, params


# --- retraining ------------------------------------------------------------------------------

def incoming_dir(root: Path, airflow: AirflowConfig) -> Path:
    folder = Path(airflow.retraining.incoming)
    return folder if folder.is_absolute() else Path(root) / folder


def data_files(folder: Path) -> list[Path]:
    """The data files in the incoming folder (hidden files and partial uploads left out)."""
    if not folder.is_dir():
        return []
    suffixes = {".parquet", ".pq", ".csv", ".gz", ".tsv"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                  p.relative_to(folder).parts) and p.suffix in suffixes and not p.name.endswith((".tmp", ".part")))


def listing(folder: Path) -> dict[str, list]:
    """relative path -> [size, mtime_ns]: what changed in the folder, cheaply."""
    return {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns] for p in data_files(folder)}


def content_fingerprint(files: list[Path], base: Path) -> str:
    """md5 over the files' relative names and bytes (streamed): equal iff the data is equal."""
    from mtl.hashing import files_md5

    return files_md5(sorted(files), lambda f: str(f.relative_to(base)).encode() + b"\0")


# --- links shown on task instances (plugins/mtl_links.py reads them) ---------------------------

LINKS_XCOM = "mtl_links"


def stage_links(root: Path, stage: str) -> dict[str, str] | None:
    """What a finished stage links to: the GX Data Docs page (validate), the MLflow run (train and
    later), the registered model version (promote). Read from the stage's own outputs."""
    from mtl.handoffs import Decision, TrainInfo
    from mtl.paths import Paths

    paths = Paths.at(root)
    links: dict[str, str] = {}
    if stage == "validate" and (paths.data_docs_dir / "index.html").is_file():
        links["data_docs"] = publish_data_docs(paths)
    if stage in ("train", "score", "evaluate", "gate", "promote") or stage.startswith("evaluate_task"):
        info = TrainInfo.read_if_present(paths.train_info)
        if info is not None and info.run_id:
            links["mlflow_run_id"] = str(info.run_id)
            links["mlflow_experiment_id"] = str(info.experiment_id or "")
    if stage == "promote":
        decision = Decision.read_if_present(paths.decision_file)
        if decision is not None and decision.version:
            links["model_name"] = str(decision.model_name)
            links["model_version"] = str(decision.version)
    return links or None


def publish_data_docs(paths) -> str:
    """The Data Docs page of a validation, as the Airflow plugin serves it: the project's own, or
    an Airflow run's, copied out of its workspace (which goes when the run ends) into
    .mtl/data_docs/RUN of the project."""
    if paths.root == paths.home:
        return "index.html"
    dest = paths.home / STATE_DIR / "data_docs" / paths.root.name
    shutil.copytree(paths.data_docs_dir, dest, dirs_exist_ok=True)
    return f"runs/{paths.root.name}/index.html"


# --- what every DAG file starts with ---------------------------------------------------------

def project_dir(dag_file: str) -> Path:
    """The workspace the DAGs run in: $MTL_PROJECT_DIR, else the folder above dags/."""
    root = Path(os.environ.get("MTL_PROJECT_DIR") or Path(dag_file).resolve().parents[1]).resolve()
    if not (root / "dvc.yaml").is_file():
        raise FileNotFoundError(f"{root / 'dvc.yaml'} not found: set $MTL_PROJECT_DIR to the project workspace")
    return root


# Deployment settings that override params.yaml `airflow` keys: the same project runs on a laptop
# and in a team's stack, whose queues and remotes are facts of the stack, not of the project.
DEPLOYMENT_ENV = {"gpu_queue": "MTL_GPU_QUEUE", "dvc_remote": "MTL_DVC_REMOTE"}


def deployment(airflow: AirflowConfig, env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """`airflow.gpu_queue` and `airflow.dvc_remote`, each overridden by its environment variable
    when that is set and not empty."""
    env = os.environ if env is None else env
    return {key: env.get(var) or getattr(airflow, key) or None for key, var in DEPLOYMENT_ENV.items()}


def gpu_task_args(airflow: AirflowConfig, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Pool (and Celery queue, when one is set) of the tasks that may use a GPU: baseline, train."""
    args = {"pool": airflow.gpu_pool}
    queue = deployment(airflow, env)["gpu_queue"]
    if queue:
        args["queue"] = queue
    return args


def default_args(airflow: AirflowConfig) -> dict:
    """Task defaults of every DAG: retries with exponential backoff (params.yaml airflow), and the
    notifier told of a task that failed for good (airflow.notify)."""
    from datetime import timedelta

    args = {
        "owner": "mtl",
        "retries": airflow.retries,
        "retry_delay": timedelta(seconds=airflow.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    }
    if (tell := notifier(airflow, "failure")) is not None:
        args["on_failure_callback"] = tell
    return args


def notifier(airflow: AirflowConfig, event: str):
    """The notifier airflow.notify names, made with its args, when it is to hear of ``event``
    (failure | rejection); None otherwise. Called with a task's context; a rejection's context
    carries ``mtl_event`` and ``mtl_reason`` (the gate's verdict) for its templates."""
    import importlib

    notify = airflow.notify
    if notify.notifier is None or event not in notify.events:
        return None
    module, cls = notify.notifier.split(":")
    return getattr(importlib.import_module(module), cls)(**notify.args)


CHAMPION_ASSET = "mtl_champion__{model}"  # updated when a run promotes a new champion of the model
