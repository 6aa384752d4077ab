"""Where a run's identity lives in the workspace it works in: ``.mtl/run.json`` (its DAG, run id
and form overrides; mtl/workspaces.py writes it). Read by lineage (tracking: the MLflow run
records the overrides). Standard library only."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_DIR = ".mtl"
RUN_FILE = "run.json"


def active_run(root: Path) -> dict | None:
    """The Airflow run ``root`` is the workspace of: dag_id, run_id, overrides; None without one."""
    path = Path(root) / STATE_DIR / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


TIMES_FILE = "stage_times.json"


def record_stage_time(root: Path, stage: str, seconds: float, finished: float) -> None:
    """Note how long ``stage`` (a command, with its task for per-task stages) took, for the run
    summary of `mtl run`; the last time of each stage is kept."""
    path = Path(root) / STATE_DIR / TIMES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[stage] = {"seconds": round(seconds, 1), "finished": finished}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")  # stages may finish at once (per-task ones)
    tmp.write_text(json.dumps(times, indent=1))
    tmp.replace(path)


def stage_times_since(root: Path, started: float) -> dict[str, float]:
    """Stage -> seconds, for the stages that finished after ``started`` (time.time()), in order."""
    path = Path(root) / STATE_DIR / TIMES_FILE
    times = json.loads(path.read_text()) if path.is_file() else {}
    ran = sorted((t["finished"], name, t["seconds"]) for name, t in times.items() if t["finished"] >= started)
    return {name: seconds for _, name, seconds in ran}
