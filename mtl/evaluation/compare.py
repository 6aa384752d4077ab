"""The candidate against the champion on the same test rows: paired differences with intervals.

Two models scored on the same rows are compared on the same bootstrap resamples, so the
interval is that of the *difference*, much narrower than the two models' own intervals side by
side: the rows that are hard for one model are mostly hard for the other. The gate reads this
comparison to tell a real regression from noise (mtl/promotion/policy.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import Config, PanelConfig, TaskConfig
from mtl.evaluation import forecast, metrics
from mtl.evaluation.evaluate import _task_rows, tasks_to_evaluate
from mtl.evaluation.forecasting import is_forecast

# The metric each task type is gated on, and whether higher is better; a panel's forecast task
# is gated on its own accuracy instead (gate_metric).
GATE_METRIC = {"binary": ("auc", True), "regression": ("rmse", False)}


def gate_metric(task: TaskConfig, panel: PanelConfig | None = None) -> str:
    """What ``task`` is judged on: AUC, RMSE, or for a forecast WAPE (a quantile: its pinball loss)."""
    if is_forecast(task, panel):
        return "pinball" if task.loss == "pinball" else "wape"
    return GATE_METRIC[task.type][0]


def higher_is_better(metric: str) -> bool:
    return metric == "auc"


def _value_and_weighted(metric: str, task: TaskConfig):
    """(metric(y, pred), the class that computes it under bootstrap weights)."""
    q = task.quantile
    return {"auc": (metrics.auc, metrics.WeightedAUC), "rmse": (metrics.rmse, metrics.WeightedRMSE),
            "wape": (forecast.wape, metrics.WeightedWAPE),
            "pinball": (lambda y, p: forecast.pinball(y, p, q), lambda y, p: metrics.WeightedPinball(y, p, q))}[metric]


def compare(candidate: pd.DataFrame, champion: pd.DataFrame, rows: pd.DataFrame, cfg: Config,
            only: str | None = None) -> dict:
    """task -> paired comparison on the task's rows, plus ``slices``: column -> value -> comparison.

    ``candidate`` and ``champion`` hold one score column per task for the same ``rows``. Each
    bootstrap resample is drawn once and judges every task, slice and both models.
    """
    ev = cfg.evaluation
    out: dict[str, dict] = {}
    jobs = []  # (entry to fill, row indices, candidate's metric under weights, champion's)
    for task in tasks_to_evaluate(cfg.tasks, only):
        if task.name not in champion.columns or task.name not in candidate.columns:
            continue  # the other model was trained for other tasks (another run's form): nothing to pair
        m = _task_rows(rows, task)
        y = pd.to_numeric(rows[task.label], errors="coerce").to_numpy(dtype="float64")
        cand, champ = (f[task.name].to_numpy(dtype="float64") for f in (candidate, champion))
        groups = [((), m)]
        for col in cfg.slice_columns():
            if col in rows:
                values = rows[col].astype(str).to_numpy()
                groups += [((col, str(v)), m & (values == v)) for v in sorted(pd.unique(values[m]))]
        entry: dict = {}
        for key, mask in groups:
            if key and mask.sum() < ev.min_slice_rows:
                continue
            idx = np.flatnonzero(mask)
            comp = _paired(task, gate_metric(task, cfg.data.panel), y[idx], cand[idx], champ[idx])
            if key:
                entry["slices"].setdefault(key[0], {})[key[1]] = comp
            else:
                entry = comp | {"slices": {col: {} for col in cfg.slice_columns() if col in rows}}
                comp = entry
                if task.type == "binary":  # the champion's curves, beside the candidate's in the model card
                    entry["champion_roc"] = metrics.roc_points(y[idx], champ[idx])
                    entry["champion_reliability"] = metrics.reliability(y[idx], champ[idx], ev.calibration_bins)
            if ev.bootstrap and comp["gain"] is not None:
                under = _value_and_weighted(comp["metric"], task)[1]
                jobs.append((comp, idx, under(y[idx], cand[idx]), under(y[idx], champ[idx])))
        out[task.name] = entry
    if jobs:
        gains: list[list[float]] = [[] for _ in jobs]
        for w in metrics.Resamples(len(rows), ev.bootstrap, ev.seed + 1):
            for samples, (comp, idx, c_under, o_under) in zip(gains, jobs):
                wi = w[idx]
                samples.append(c_under(wi) - o_under(wi))
        for samples, (comp, *_rest) in zip(gains, jobs):
            sign = 1.0 if higher_is_better(comp["metric"]) else -1.0
            comp["gain_interval"] = metrics.interval(sign * np.asarray(samples), ev.interval)
    return out


def _paired(task: TaskConfig, metric: str, y: np.ndarray, cand: np.ndarray, champ: np.ndarray) -> dict:
    """One comparison on ``metric``: both values and the gain (positive = candidate better); its
    interval is filled in by ``compare`` from the resamples."""
    value = _value_and_weighted(metric, task)[0]
    c, o = value(y, cand), value(y, champ)
    gain = None if c is None or o is None else (c - o if higher_is_better(metric) else o - c)
    return {"metric": metric, "candidate": c, "champion": o, "rows": int(len(y)), "gain": gain, "gain_interval": None}


def mtl_gain(vs_baseline: dict, result: dict) -> dict:
    """Each task's gain over its single-task baseline (paired, as against a champion), the mean
    relative gain Δm over all tasks (Maninis et al., 2019: positive when multi-task learning helps
    on average), and the tasks with negative transfer: worse than their own single-task model,
    flagged as beyond noise when the gain's interval lies below zero."""
    tasks, relative, negative = {}, [], []
    for task, comp in vs_baseline.items():
        entry = {k: comp[k] for k in ("metric", "candidate", "champion", "gain", "gain_interval")}
        entry["baseline"] = entry.pop("champion")
        if comp.get("baseline_at_threshold"):  # the baseline's F1 etc. at its own validation threshold
            entry["baseline_at_threshold"] = comp["baseline_at_threshold"]
        tasks[task] = entry
        if comp["gain"] is None:
            continue
        if comp["champion"]:
            relative.append(comp["gain"] / abs(comp["champion"]))
        if comp["gain"] < 0:
            iv = comp.get("gain_interval")
            negative.append({"task": task, "gain": comp["gain"], "beyond_noise": bool(iv and iv[1] < 0)})
    return {"tasks": tasks, "delta_m": sum(relative) / len(relative) if relative else None,
            "negative_transfer": negative}
