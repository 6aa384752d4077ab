"""Where a run's identity lives in the workspace it works in: ``.mtl/run.json`` (its DAG, run id
and form overrides; mtl/workspaces.py writes it). Read by lineage (tracking: the MLflow run
records the overrides). Standard library only."""

from __future__ import annotations

import json
from pathlib import Path

STATE_DIR = ".mtl"
RUN_FILE = "run.json"


def active_run(root: Path) -> dict | None:
    """The Airflow run ``root`` is the workspace of: dag_id, run_id, overrides; None without one."""
    path = Path(root) / STATE_DIR / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None
