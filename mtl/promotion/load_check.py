"""Pre-promotion load check: the packaged model, loaded in a fresh process, must score raw rows.

The alias moves only after the exact package the registry will serve (its code, transform and
weights, as MLflow stored them) has been loaded by a new interpreter that shares nothing with the
training process, and has returned one finite score per task and row, probabilities within
[0, 1] for binary tasks. A package that only works in the process that built it (a missing
artifact, an import that resolves only there, a corrupt weights file) fails here, not in serving.

    python -m mtl.promotion.load_check MODEL_URI ROWS.parquet TASK:TYPE [TASK:TYPE ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LoadCheck:
    passed: bool
    reason: str


def check_in_fresh_process(model_uri: str, rows_path: Path, task_types: dict[str, str], tracking_uri: str,
                           timeout: float = 300.0) -> LoadCheck:
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_REGISTRY_URI=tracking_uri)
    cmd = [sys.executable, "-m", "mtl.promotion.load_check", model_uri, str(rows_path),
           *(f"{t}:{kind}" for t, kind in task_types.items())]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return LoadCheck(False, f"loading and scoring {model_uri} took over {timeout:.0f} s")
    if proc.returncode == 0:
        return LoadCheck(True, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "ok")
    tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
    return LoadCheck(False, f"{model_uri} failed the load check in a fresh process: " + " | ".join(tail))


def _check(model_uri: str, rows_path: str, task_types: dict[str, str]) -> str:
    import mlflow
    import numpy as np
    import pandas as pd

    rows = pd.read_parquet(rows_path)
    model = mlflow.pyfunc.load_model(model_uri)
    inputs = model.metadata.get_input_schema().input_names()
    scores = model.predict(rows[inputs])
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(f"predict returned {type(scores).__name__}, not a DataFrame of per-task scores")
    missing = [t for t in task_types if t not in scores.columns]
    if missing:
        raise ValueError(f"no score column for task(s) {missing}; got {list(scores.columns)}")
    # a panel's model returns one forecast per series of the history; any other, one score per row
    forecast = "origin" in scores.columns
    if not (0 < len(scores) <= len(rows) if forecast else len(scores) == len(rows)):
        raise ValueError(f"{len(scores)} scores for {len(rows)} rows")
    for task, kind in task_types.items():
        values = scores[task].to_numpy(dtype="float64")
        if not np.isfinite(values).all():
            raise ValueError(f"{task}: {int((~np.isfinite(values)).sum())} non-finite scores")
        if kind == "binary" and ((values < 0) | (values > 1)).any():
            raise ValueError(f"{task}: probabilities outside [0, 1]")
    return json.dumps({"rows": len(rows), "tasks": list(task_types)})


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_uri, rows_path, *specs = argv
    task_types = dict(spec.rsplit(":", 1) for spec in specs)
    try:
        print(f"load check passed: {_check(model_uri, rows_path, task_types)}")
    except Exception as err:  # noqa: BLE001 - any failure to load or score is the finding
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
