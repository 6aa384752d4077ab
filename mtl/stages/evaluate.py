"""Stage ``evaluate`` (the reduce step): every task's evaluation gathered into metrics.json, the
multi-task gain over the baselines (Δm, negative transfer), the DVC plots, the MLflow run."""

from __future__ import annotations

import shutil

from mtl.config import Config
from mtl.handoffs import TrainInfo
from mtl.paths import Paths
from mtl.stages.common import read_json, read_json_if_present, write_json


def run(cfg: Config, paths: Paths) -> dict:
    import mlflow
    import pyarrow.parquet as pq

    from mtl import tracking
    from mtl.evaluation.compare import mtl_gain
    from mtl.evaluation.decision import format_decision
    from mtl.evaluation.evaluate import format_table, headline

    info = TrainInfo.read(paths.train_info)
    per_task = {t.name: read_json(paths.task_eval_dir(t.name) / "metrics.json", f"evaluate_task ({t.name})")
                for t in cfg.tasks}
    result = {name: e["metrics"] for name, e in per_task.items()}
    payload = {"run_id": info.run_id, "test_rows": pq.ParquetFile(paths.predictions_file).metadata.num_rows,
               "tasks": result}
    if all("vs_baseline" in e for e in per_task.values()):
        payload["mtl_gain"] = mtl_gain({name: e["vs_baseline"] for name, e in per_task.items()}, result)
    payload["decision_cost"] = _decision_cost(cfg, paths)
    _write_plots(paths, per_task)
    write_json(paths.metrics_file, payload)
    write_json(paths.summary_file, headline(result, payload.get("mtl_gain")))
    tracking.configure(paths)
    with mlflow.start_run(run_id=info.run_id):
        mlflow.log_metrics(tracking.evaluation_metrics(result) | tracking.gain_metrics(payload.get("mtl_gain")))
        mlflow.log_artifact(str(paths.metrics_file), "evaluation")
        for folder, name in ((paths.plots_dir, "plots"), (paths.calibration_dir, "calibration")):
            if folder.is_dir():
                mlflow.log_artifacts(str(folder), f"evaluation/{name}")
        _log_baseline(cfg, paths, per_task, info.run_id)
    print("\n".join([format_table(result, gain=payload.get("mtl_gain")), *format_decision(payload["decision_cost"])]))
    return payload


def _decision_cost(cfg: Config, paths: Paths) -> dict | None:
    """A panel's stocking decision scored on the test origins (mtl/evaluation/decision.py)."""
    if cfg.data.panel is None:
        return None
    import pandas as pd

    from mtl.evaluation.decision import decision_costs

    trees = pd.read_parquet(paths.gbdt_scores) if paths.gbdt_scores.is_file() else None
    return decision_costs(pd.read_parquet(paths.predictions_file), pd.read_parquet(paths.test_raw_file), cfg, trees)


def _log_baseline(cfg: Config, paths: Paths, per_task: dict[str, dict], run_id: str) -> None:
    """The single-task baseline as a child run of the training run it is the yardstick of: its
    settings, per-epoch curves and test metrics beside the candidate's in the MLflow UI. Logged
    here, where both are known (the baseline trains before, and apart from, the candidate);
    once per training run."""
    import mlflow

    from mtl import tracking

    info = read_json_if_present(paths.baseline_info)
    if not info or not info.get("enabled"):
        return
    run = mlflow.get_run(run_id)
    mine = f"tags.mlflow.parentRunId = '{run_id}' and tags.`mtl.role` = 'baseline'"
    if mlflow.search_runs([run.info.experiment_id], filter_string=mine, output_format="list"):
        return
    # nested under the active training run, and in its experiment (not the process's default)
    with mlflow.start_run(nested=True, experiment_id=run.info.experiment_id, run_name=f"{run.info.run_name} baseline",
                          tags=tracking.lineage_tags(paths) | {"mtl.role": "baseline"}):
        mlflow.log_params(tracking.flat_params(cfg.single_task_baseline()))
        for record in info.get("history", []):
            mlflow.log_metrics({k: v for k, v in record.items() if k != "epoch" and v is not None},
                               step=record["epoch"])
        tests = {f"test_{e['vs_baseline']['metric']}_{task}": e["vs_baseline"]["champion"]  # the other model's
                 for task, e in per_task.items() if e.get("vs_baseline", {}).get("champion") is not None}
        mlflow.log_metrics(tests | {"best_epoch": info["best_epoch"], "train_seconds": info["seconds"]})
        mlflow.log_dict(info, "baseline.json")


def _write_plots(paths: Paths, per_task: dict[str, dict]) -> None:
    """Each task's ROC and reliability points as a DVC plot file (the folders are rewritten)."""
    for folder, prefix, key in ((paths.plots_dir, "roc", "roc"), (paths.calibration_dir, "reliability", "reliability")):
        if folder.exists():
            shutil.rmtree(folder)
        for name, e in per_task.items():
            if e.get(key):
                write_json(folder / f"{prefix}_{name}.json", e[key])  # type: ignore[arg-type]
