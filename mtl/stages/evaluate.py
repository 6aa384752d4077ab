"""Stage ``evaluate`` (the reduce step): every task's evaluation gathered into metrics.json, the
multi-task gain over the baselines (Δm, negative transfer), the DVC plots, the MLflow run."""

from __future__ import annotations

import shutil

from mtl.config import Config
from mtl.handoffs import TrainInfo
from mtl.paths import Paths
from mtl.stages.common import read_json, write_json


def run(cfg: Config, paths: Paths) -> dict:
    import mlflow
    import pyarrow.parquet as pq

    from mtl import tracking
    from mtl.evaluation.compare import mtl_gain
    from mtl.evaluation.evaluate import format_table

    info = TrainInfo.read(paths.train_info)
    per_task = {t.name: read_json(paths.task_eval_dir(t.name) / "metrics.json", f"evaluate_task ({t.name})")
                for t in cfg.tasks}
    result = {name: e["metrics"] for name, e in per_task.items()}
    payload = {"run_id": info.run_id, "test_rows": pq.ParquetFile(paths.predictions_file).metadata.num_rows,
               "tasks": result}
    if all("vs_baseline" in e for e in per_task.values()):
        payload["mtl_gain"] = mtl_gain({name: e["vs_baseline"] for name, e in per_task.items()}, result)
    _write_plots(paths, per_task)
    write_json(paths.metrics_file, payload)
    tracking.configure(paths)
    with mlflow.start_run(run_id=info.run_id):
        mlflow.log_metrics(tracking.evaluation_metrics(result) | tracking.gain_metrics(payload.get("mtl_gain")))
        mlflow.log_artifact(str(paths.metrics_file), "evaluation")
        for folder, name in ((paths.plots_dir, "plots"), (paths.calibration_dir, "calibration")):
            if folder.is_dir():
                mlflow.log_artifacts(str(folder), f"evaluation/{name}")
    print(format_table(result, gain=payload.get("mtl_gain")))
    return payload


def _write_plots(paths: Paths, per_task: dict[str, dict]) -> None:
    """Each task's ROC and reliability points as a DVC plot file (the folders are rewritten)."""
    for folder, prefix, key in ((paths.plots_dir, "roc", "roc"), (paths.calibration_dir, "reliability", "reliability")):
        if folder.exists():
            shutil.rmtree(folder)
        for name, e in per_task.items():
            if e.get(key):
                write_json(folder / f"{prefix}_{name}.json", e[key])  # type: ignore[arg-type]
