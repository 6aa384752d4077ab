"""MLflow setup, lineage tags and the names of what the stages log. The only module that decides
where runs are tracked."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mtl.paths import Paths

if TYPE_CHECKING:
    from mtl.config import Config

EXPERIMENT = "mtl-training"
TUNE_EXPERIMENT = "mtl-tuning"  # `mtl tune`: a parent run per study, a child run per trial


def tracking_uri(paths: Paths) -> str:
    """$MLFLOW_TRACKING_URI (e.g. a PostgreSQL store or a server), else a SQLite file in the project."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.mlflow_db}"


def client(paths: Paths):
    """An MlflowClient on the project's store for both tracking and the registry, whatever an
    earlier mlflow.set_registry_uri in this process pointed at (MlflowClient's registry default)."""
    from mlflow import MlflowClient

    uri = tracking_uri(paths)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def configure(paths: Paths, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the store and make sure ``experiment`` exists; returns its id."""
    import mlflow

    user_uri = os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri(paths)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI; undo that, or a later configure() in
    # this process (another project) would take this project's store for the user's choice.
    if user_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    existing = mlflow.get_experiment_by_name(experiment)
    if existing is not None:
        return existing.experiment_id
    # With the default local store, keep artifacts inside the project too (MLflow would otherwise
    # pick ./mlruns relative to whatever directory the process happens to run in).
    location = None if user_uri else paths.mlflow_artifacts.as_uri()
    return mlflow.create_experiment(experiment, artifact_location=location)


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def dvc_hashes(root: Path) -> dict[str, str]:
    """DVC's content hashes of the stage outputs recorded in dvc.lock, e.g. {"data/01_raw": "ab12...dir"}.

    `dvc repro` writes each stage's lock entry as soon as that stage finishes, so a later stage
    sees the exact hashes of the data it reads.
    """
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    hashes = {}
    for stage in stages.values():
        for out in stage.get("outs", []):
            if "md5" in out:
                hashes[out["path"]] = out["md5"]
    return hashes


def dvc_experiment() -> str | None:
    """The DVC experiment running this stage (`dvc exp run` names it in $DVC_EXP_NAME), or None.
    Experiments train and evaluate but never register a version or move the champion."""
    return os.environ.get("DVC_EXP_NAME") or None


def lineage_tags(paths: Paths) -> dict[str, str]:
    tags = {"mtl.project_dir": str(paths.home)}
    if paths.root != paths.home:
        tags["mtl.workspace"] = str(paths.root)
    experiment = dvc_experiment()
    if experiment:
        tags["mtl.dvc_experiment"] = experiment
        tags["mtl.dvc_baseline_rev"] = os.environ.get("DVC_EXP_BASELINE_REV", "")
    commit = git_commit(paths.home)  # a workspace's code is the project's, as it stood
    if commit:
        tags["mtl.git_commit"] = commit
    for path, md5 in dvc_hashes(paths.root).items():
        if path.startswith("data/0") and path.count("/") == 1:
            tags[f"mtl.dvc.{path.split('/')[1]}"] = md5
    run_id = os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    if run_id:
        tags["mtl.airflow_run_id"] = run_id
    pipeline_run = os.environ.get("MTL_PIPELINE_RUN_ID") or run_id
    if pipeline_run:
        tags["mtl.pipeline_run_id"] = pipeline_run
    from mtl.runstate import active_run

    active = active_run(paths.root)  # an Airflow run's form values, applied over params.yaml
    if active is not None and active.get("run_id") == run_id:
        tags["mtl.airflow_dag_id"] = str(active.get("dag_id"))
        tags["mtl.overrides"] = json.dumps(active.get("overrides", {}), sort_keys=True, default=str)[:5000]
    return tags


# --- MLflow names: what the stages log, named in one place ------------------------------------

_METRIC_CHARS = re.compile(r"[^\w\-. :/]")


def metric_name(name: str) -> str:
    """``name`` with the characters MLflow refuses in a metric name (it allows alphanumerics and
    ``_-. :/``) replaced by ``_``."""
    return _METRIC_CHARS.sub("_", name)


def flat_params(cfg: Config) -> dict[str, str]:
    """The whole config as MLflow params: dotted keys, tasks by name (``tasks.click.type``)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(node, list) and node and isinstance(node[0], dict) and "name" in node[0]:
            for item in node:
                walk(f"{prefix}.{item['name']}", {k: v for k, v in item.items() if k != "name"})
        else:
            flat[prefix] = json.dumps(node) if isinstance(node, (list, dict)) else str(node)

    walk("", cfg.model_dump(mode="json", by_alias=True))
    return flat


def validation_tags(validation: dict) -> dict[str, str]:
    """The validation outcome on the MLflow run: passed / passed with warnings, and the warnings."""
    warned = [c for c in validation.get("checks", []) if not c["success"] and c.get("severity") == "warning"]
    tags = {"mtl.validation": ("passed" if validation.get("success") else "failed")
            + (f" with {len(warned)} warning(s)" if warned else "")}
    if warned:
        tags["mtl.validation_warnings"] = "\n".join(c["detail"] for c in warned)[:5000]
    reference = validation.get("drift_reference") or {}
    tags["mtl.drift_reference"] = reference.get("name") or f"none: {reference.get('skipped', 'not checked')}"
    return tags


def validation_metrics(validation: dict) -> dict[str, float]:
    """Every drift measure as a metric (drift_psi_price, drift_label_shift_click/search, ...)."""
    out = {"validation_warnings": float(validation.get("warnings", 0))}
    for c in validation.get("checks", []):
        if c["expectation"].startswith("drift.") and c.get("value") is not None:
            out[metric_name(f"{c['expectation'].replace('.', '_')}_{c['column']}")] = float(c["value"])
    return out


_TEST_METRICS = ("auc", "pr_auc", "logloss", "ece", "gauc", "oracle_auc", "precision", "recall", "f1", "accuracy",
                 "rmse", "mae")


def evaluation_metrics(result: dict) -> dict[str, float]:
    """MLflow metric names: test_<metric>_<task>, test_<metric>_<task>.<column>:<value> per slice."""
    flat = {}
    for task, e in result.items():
        for k in (*_TEST_METRICS, *(k for k in e if k.startswith("auc_given_"))):
            if e.get(k) is not None:
                flat[f"test_{k}_{task}"] = e[k]
        for k, v in (e.get("forecast") or {}).items():  # a panel's forecast: wape, mase, rmsse, bias, pinball...
            if isinstance(v, (int, float)) and k != "rows":
                flat[f"test_{k}_{task}"] = v
        if e.get("auc_interval"):
            flat[f"test_auc_low_{task}"], flat[f"test_auc_high_{task}"] = e["auc_interval"]
        for col, values in e.get("slices", {}).items():
            for v, se in values.items():
                for k in ("auc", "rmse"):
                    if se.get(k) is not None:
                        flat[metric_name(f"test_{k}_{task}.{col}:{v}")] = se[k]
    return flat


def gain_metrics(gain: dict | None) -> dict[str, float]:
    """The multi-task gain over the single-task baselines: per task and Δm."""
    if not gain:
        return {}
    flat = {f"test_mtl_gain_{t}": g["gain"] for t, g in gain["tasks"].items() if g.get("gain") is not None}
    if gain.get("delta_m") is not None:
        flat["test_delta_m"] = gain["delta_m"]
    return flat
