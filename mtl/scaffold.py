"""`mtl init --from PATH`: a complete params file for the user's own file or folder.

Reads a sample of the rows (every file of a folder contributes), decides each column's role
(mtl/data/ingest/infer.py) and writes params whose every section names the user's columns: the
schema, one task per label (funnel rules and conditions found in the data), validation ranges,
evaluation slices, the gate and the scoring keys. Model, training, tuning and Airflow settings
come from the project's params.yaml (the shipped defaults), and so do its evaluation settings
other than the columns it names. Every key DVC tracks is written, so DVC finds
each parameter it tracks; there is no data.synthetic section.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from mtl.config import ConfigError, parse_config
from mtl.data.ingest.adapters.files import Files, format_of, splits_from_names
from mtl.data.ingest.infer import Column, condition_of, implied_by, infer

SAMPLE_ROWS = 100_000
TEMPLATE_SECTIONS = ("features", "model", "train", "tune", "airflow", "retention")  # taken from params.yaml as they are
USER_NAME = re.compile(r"(user|visitor|customer|member|buyer|client|uid)", re.IGNORECASE)
SCENARIO_NAME = re.compile(r"^(scenario|domain|surface|channel|country|market|site|platform)$", re.IGNORECASE)
MAX_SLICE_VALUES = 20
SECTION_ORDER = ("data", "features", "tasks", "model", "train", "tune", "validation", "evaluation", "gate", "scoring",
                 "airflow", "retention")


def read_sample(path: Path, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """Up to ``rows`` rows, an equal share from each file (a split column from file names, as
    the files adapter derives it)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    files = Files().files(path)
    share = max(1, rows // len(files))
    derived = splits_from_names(files)
    frames = []
    for f in files:
        if format_of(f) == "parquet":
            table = next(pq.ParquetFile(f).iter_batches(batch_size=share), None)
            frame = table.to_pandas() if table is not None else pd.DataFrame()
        else:
            frame = pacsv.read_csv(str(f)).slice(0, share).to_pandas()
        if derived:
            frame["split"] = derived[f]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _text_available(template: dict) -> bool:
    from mtl.data.features.text import ENCODERS

    encoder = ENCODERS.get(((template.get("features") or {}).get("text") or {}).get("encoder", ""))
    return encoder is not None and importlib.util.find_spec(encoder.module) is not None


def decide(sample: pd.DataFrame, labels: list[str] | None, template: dict) -> list[Column]:
    """The columns' roles; text is left out (said why) without the text extra installed."""
    columns = infer(sample, labels)
    if any(c.role == "text" for c in columns) and not _text_available(template):
        columns = [Column(c.name, "ignored", "free text, but the text extra is not installed "
                          "(pip install -e '.[text]', then run init again)") if c.role == "text" else c
                   for c in columns]
    return columns


def _of(columns: list[Column], role: str) -> list[str]:
    return [c.name for c in columns if c.role == role]


def _time_section(sample: pd.DataFrame, time: str | None) -> dict:
    """The split and time-window settings the time column allows."""
    if time is None:  # auto: the data's split column, else a seeded random split
        return {"split": "auto", "max_future_minutes": None, "window_days": None}
    ts = pd.to_datetime(sample[time], errors="coerce", format="mixed", utc=True)
    days = ts.dt.normalize().nunique()
    future = ts.max() > pd.Timestamp(datetime.now(timezone.utc))
    return {"split": "auto" if days >= 3 else "random", "max_future_minutes": None if future else 60,
            "window_days": None}


def _tasks(sample: pd.DataFrame, columns: list[Column]) -> list[dict]:
    labels = [c for c in columns if c.role == "label"]
    binary = [c.name for c in labels if c.extra["type"] == "binary"]
    implies = implied_by(sample, labels)
    tasks = []
    for c in labels:
        task = {"name": _task_name(c.name), "label": c.name, "type": c.extra["type"]}
        if c.name in implies:
            task["implies"] = implies[c.name]
        if c.extra["type"] == "regression" and (parent := condition_of(sample, c.name, binary)):
            task["condition"] = {"column": parent, "equals": 1}
        tasks.append(task)
    return tasks


def _task_name(label: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]+", "_", label).strip("_") or "task"


def _slices(sample: pd.DataFrame, categorical: list[str], scenario: str | None) -> list[str]:
    few = [c for c in categorical if c != scenario and 2 <= sample[c].nunique() <= MAX_SLICE_VALUES]
    return few[:3]


def _data(source: str, sample: pd.DataFrame, columns: list[Column], time: str | None) -> dict:
    categorical = _of(columns, "categorical")
    scenario = next((c for c in categorical if SCENARIO_NAME.match(c) and sample[c].nunique() <= 50), None)
    return {
        "source": "files", "path": source, "window_days": None, "panel": None,
        "schema": {"categorical": categorical, "numeric": _of(columns, "numeric"), "labels": _of(columns, "label"),
                   "scenario": scenario, "time": time, "truth": {},
                   "sequence": {c.name: c.extra["vocabulary"] for c in columns if c.role == "sequence"},
                   "text": _of(columns, "text")},
        # fewer than 3 days cannot give validation and test a day each: a random split then
        "split": {"method": "auto" if _of(columns, "split") else _time_section(sample, time)["split"],
                  "column": "split"},
    }


def params_for(source: str, sample: pd.DataFrame, columns: list[Column], template: dict, name: str) -> dict:
    """The raw params (before validation) for ``columns`` of the data at ``source``."""
    time = next(iter(_of(columns, "time")), None)
    data = _data(source, sample, columns, time)
    schema = data["schema"]
    tasks = _tasks(sample, columns)
    numeric = [c for c in columns if c.role == "numeric"]
    ids = [c for c in schema["categorical"] if re.search(r"id$|_key$", c, re.IGNORECASE)]
    raw = {key: template[key] for key in TEMPLATE_SECTIONS if key in template}
    raw["features"] = {**raw.get("features", {}),
                       "columns": {c.name: {"clip": [0, None], "log": True} for c in numeric if c.extra.get("log")}}
    raw["airflow"] = {**raw.get("airflow", {}),
                      "retraining": {**(raw.get("airflow", {}).get("retraining") or {}), "source": "files",
                                     "window_days": None}}
    raw |= {
        "data": data, "tasks": tasks,
        "validation": {"min_rows": min(1000, max(1, len(sample) // 10)), "keys": [],
                       "max_future_minutes": _time_section(sample, time)["max_future_minutes"],
                       "columns": {c.name: {"min": 0} for c in numeric
                                   if pd.to_numeric(sample[c.name], errors="coerce").min() >= 0},
                       "expectations": None},
        # the project's evaluation settings (bootstrap, baselines...), with columns of this data
        "evaluation": {**(template.get("evaluation") or {}),
                       "gauc_by": next((c for c in ids if USER_NAME.search(c)), None),
                       "slices": _slices(sample, schema["categorical"], schema["scenario"])},
        "gate": {"model_name": f"mtl-{name}", "tasks": {t["name"]: _task_gate(t) for t in tasks},
                 "slices": {schema["scenario"]: {"auc": {"max_regression": 0.01},
                                                 "rmse": {"max_regression": 0.05, "relative": True}}}
                 if schema["scenario"] else {}},
        "scoring": {"keep": ids[:3]},
    }
    return raw


def _task_gate(task: dict) -> dict:
    """No floor (a first model of unknown quality may be promoted); regressions against the
    champion: AUC 0.005, RMSE 5% relative."""
    if task["type"] == "binary":
        return {"floor": None, "max_regression": 0.005}
    return {"max_regression": 0.05, "relative": True}


def _complete(raw: dict) -> dict:
    """``raw``, validated, with every key DVC tracks (mtl/stagelist.py) that it lacks filled in
    with its default: DVC stops on a tracked key it cannot find."""
    from mtl.stagelist import missing_params

    full = parse_config(raw, source="the inferred params").model_dump(mode="json", by_alias=True)
    for key in missing_params(raw):
        node, value = raw, full
        *parents, last = key.split(".")
        for part in parents:
            node, value = node.setdefault(part, {}), value[part]
        node[last] = value[last]
    return raw


def _header(path: str, columns: list[Column], rows: int) -> str:
    lines = [f"# Written by `mtl init --from {path}` from {rows:,} sampled rows. Each column's role:"]
    lines += [f"#   {c.name:<24} {c.role:<12} {c.reason}" for c in columns]
    lines += ["# Check the roles above; change them here, or rerun init (--labels names the label columns).",
              "# Model, training, tuning and Airflow settings are the project's params.yaml defaults.", ""]
    return "\n".join(lines) + "\n"


def init(source: Path, project: Path, output: Path, labels: list[str] | None = None) -> tuple[Path | None, list[Column], dict]:
    """Write the params file for ``source``; an existing file is kept as <name>.bak first.
    Returns (the backup, if one was made; the decisions; the params written)."""
    template_file = project / "params.yaml"
    template = (yaml.safe_load(template_file.read_text()) or {}) if template_file.is_file() else {}
    if not source.exists():
        raise ConfigError(f"--from {source}: no such file or folder")
    sample = read_sample(source)
    if sample.empty:
        raise ConfigError(f"{source} holds no rows: nothing to infer a schema from")
    columns = decide(sample, labels, template)
    try:
        where = str(source.resolve().relative_to(project.resolve()))
    except ValueError:
        where = str(source.resolve())
    name = re.sub(r"[^0-9a-z]+", "-", source.resolve().name.split(".")[0].lower()).strip("-") or "model"
    full = _complete(params_for(where, sample, columns, template, name))
    full = {key: full[key] for key in SECTION_ORDER if key in full}
    backup = None
    if output.exists():
        backup = output.with_name(output.name + ".bak")
        backup.write_bytes(output.read_bytes())
    output.write_text(_header(where, columns, len(sample)) + yaml.safe_dump(full, sort_keys=False,
                                                                             default_flow_style=None))
    return backup, columns, full


def describe(columns: list[Column], params: dict, output: Path, backup: Path | None) -> str:
    """What init decided, per column, the tasks, and what to run next."""
    width = max(len(c.name) for c in columns)
    lines = [f"{c.name:<{width}}  {c.role:<11}  {c.reason}" for c in columns]
    lines += ["", "tasks:"]
    for t in params["tasks"]:
        rule = (f", only where {t['implies']} is 1 (it never occurs without it)" if t.get("implies") else "") + (
            f", defined where {t['condition']['column']} is 1 (null elsewhere)" if t.get("condition") else "")
        lines.append(f"  {t['name']}: {t['type']}{rule}")
    schema = params["data"]["schema"]
    if schema.get("scenario"):
        lines.append(f"scenario (metrics and the gate per value): {schema['scenario']}")
    lines += ["", f"wrote {output}" + (f" (the previous file is {backup})" if backup else ""),
              "check the roles above (pass --labels a,b if a label was missed or a feature taken for one), then: mtl run"]
    return "\n".join(lines)
