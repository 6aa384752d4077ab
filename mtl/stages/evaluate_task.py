"""Stage ``evaluate_task`` (the map step, once per task): metrics with bootstrap intervals and
slices, the paired gain over the task's single-task baseline, ROC and reliability points."""

from __future__ import annotations

import shutil
from pathlib import Path

from mtl.config import Config
from mtl.paths import Paths
from mtl.stages.common import read_json_if_present, write_json


def run(cfg: Config, paths: Paths, task: str | None = None) -> dict:
    """One task's evaluation; without ``task``, every task in turn (an in-process run of the
    whole chain)."""
    import pandas as pd

    from mtl.evaluation.evaluate import calibration_plots, evaluate_scores, roc_plots, tasks_to_evaluate

    if task is None:
        return {t.name: run(cfg, paths, t.name) for t in cfg.tasks}
    if task not in {t.name for t in cfg.tasks}:
        from mtl.config import ConfigError

        raise ConfigError(f"evaluate-task: no task named {task!r} in params.yaml (tasks: {[t.name for t in cfg.tasks]})")
    rows = pd.read_parquet(paths.test_raw_file)
    scores = pd.read_parquet(paths.predictions_file)
    payload: dict = {"task": task, "metrics": evaluate_scores(scores, rows, cfg, only=task,
                                                              thresholds=thresholds(paths.train_info))[task]}
    if paths.gbdt_scores.is_file():  # a panel's boosted trees, judged as the model is
        trees = evaluate_scores(pd.read_parquet(paths.gbdt_scores), rows, cfg, only=task)[task]
        payload["metrics"]["gbdt"] = {k: trees[k] for k in ("auc", "pr_auc", "rmse") if trees.get(k) is not None}
        payload["metrics"]["gbdt"] |= {k: v for k, v in (trees.get("forecast") or {}).items()
                                       if k in ("wape", "mase", "rmsse", "bias", "pinball", "coverage")}
    baseline = pd.read_parquet(paths.baseline_predictions_file) if paths.baseline_predictions_file.is_file() else None
    if baseline is not None and task in baseline.columns:
        payload["vs_baseline"] = _vs_baseline(cfg, paths, task, scores, baseline, rows)
    this = tasks_to_evaluate(cfg.tasks, only=task)
    payload["roc"] = roc_plots(scores, rows, this).get(task)
    payload["reliability"] = calibration_plots(scores, rows, this, cfg.evaluation.calibration_bins).get(task)
    out = paths.task_eval_dir(task)
    if out.exists():
        shutil.rmtree(out)
    write_json(out / "metrics.json", payload)
    m = payload["metrics"]
    judged = m.get("gate_metric") or ("auc" if m.get("auc") is not None else "rmse")  # a forecast's: wape, pinball
    headline = f"{judged.upper()} {m[judged]:.4f}" if m.get(judged) is not None else "no defined rows"
    print(f"{task}: {headline}")
    return payload


def _vs_baseline(cfg: Config, paths: Paths, task: str, scores, baseline, rows) -> dict:
    """The paired comparison with the baseline, and the baseline's own threshold metrics."""
    from mtl.evaluation.compare import compare
    from mtl.evaluation.evaluate import at_thresholds, tasks_to_evaluate

    result = compare(scores, baseline, rows, cfg, only=task)[task]
    at_baseline = at_thresholds(baseline, rows, tasks_to_evaluate(cfg.tasks, only=task),
                                thresholds(paths.baseline_info))
    if task in at_baseline:
        result["baseline_at_threshold"] = at_baseline[task]
    return result


def thresholds(info_file: Path) -> dict[str, float | None]:
    """The thresholds a training stage chose on validation; none from a model trained before
    they were (its threshold metrics are then None, not an error)."""
    return (read_json_if_present(info_file) or {}).get("thresholds") or {}
