"""Where an Airflow run's form overlay lives while it runs: the project's own params.yaml kept
aside in ``.mtl/params.base.yaml`` and the run's identity and overrides in ``.mtl/run.json``
(mtl/orchestration.py writes them). Read by lineage (tracking: the MLflow run records the
overrides) and by `mtl tune --apply` (which will not edit params.yaml under an overlay).
Standard library only."""

from __future__ import annotations

import json
from pathlib import Path

STATE_DIR = ".mtl"
BASE_PARAMS = "params.base.yaml"
RUN_FILE = "run.json"


def base_params(root: Path) -> Path:
    """The project's own params.yaml while an overlay is active (it exists only then)."""
    return Path(root) / STATE_DIR / BASE_PARAMS


def active_run(root: Path) -> dict | None:
    """The Airflow run whose overlay is applied: dag_id, run_id, overrides; None without one."""
    path = Path(root) / STATE_DIR / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None
