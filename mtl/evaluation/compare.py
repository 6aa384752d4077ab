"""The candidate against the champion on the same test rows: paired differences with intervals.

Two models scored on the same rows are compared on the same bootstrap resamples, so the
interval is that of the *difference*, much narrower than the two models' own intervals side by
side: the rows that are hard for one model are mostly hard for the other. The gate reads this
comparison to tell a real regression from noise (mtl/promotion/policy.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import Config
from mtl.evaluation import metrics
from mtl.evaluation.evaluate import _task_rows

# The metric each task type is gated on, and whether higher is better.
GATE_METRIC = {"binary": ("auc", True), "regression": ("rmse", False)}


def _metric_under(task_type: str, y: np.ndarray, s: np.ndarray, weights: np.ndarray | None) -> tuple[float | None, np.ndarray | None]:
    """The gate metric on all rows, and under each bootstrap resample (None without weights)."""
    if task_type == "binary":
        value = metrics.auc(y, s)
        samples = metrics.weighted_aucs(y, s, weights) if weights is not None and value is not None else None
    else:
        value = metrics.rmse(y, s)
        if weights is not None and value is not None:
            total = weights.sum(1)
            samples = np.sqrt((weights @ (y - s) ** 2) / np.where(total > 0, total, np.nan))
        else:
            samples = None
    return value, samples


def _paired(task_type: str, y: np.ndarray, cand: np.ndarray, champ: np.ndarray, weights: np.ndarray | None,
            level: float) -> dict:
    """One comparison: both values, the gain (positive = candidate better) and its interval."""
    metric, higher = GATE_METRIC[task_type]
    c, c_samples = _metric_under(task_type, y, cand, weights)
    o, o_samples = _metric_under(task_type, y, champ, weights)
    out: dict = {"metric": metric, "candidate": c, "champion": o, "rows": int(len(y)), "gain": None,
                 "gain_interval": None}
    if c is None or o is None:
        return out
    sign = 1.0 if higher else -1.0
    out["gain"] = sign * (c - o)
    if c_samples is not None and o_samples is not None:
        out["gain_interval"] = metrics.interval(sign * (c_samples - o_samples), level)
    return out


def compare(candidate: pd.DataFrame, champion: pd.DataFrame, rows: pd.DataFrame, cfg: Config) -> dict:
    """task -> paired comparison on the task's rows, plus ``slices``: column -> value -> comparison.

    ``candidate`` and ``champion`` hold one score column per task for the same ``rows``.
    """
    ev = cfg.evaluation
    weights = metrics.bootstrap_weights(len(rows), ev.bootstrap, ev.seed + 1) if ev.bootstrap else None
    out: dict[str, dict] = {}
    for task in (t.model_dump(mode="json") for t in cfg.tasks):
        m = _task_rows(rows, task)
        y = pd.to_numeric(rows[task["label"]], errors="coerce").to_numpy(dtype="float64")[m]
        cand = candidate[task["name"]].to_numpy(dtype="float64")[m]
        champ = champion[task["name"]].to_numpy(dtype="float64")[m]
        w = weights[:, m] if weights is not None else None
        entry = _paired(task["type"], y, cand, champ, w, ev.interval)
        entry["slices"] = {}
        for col in cfg.slice_columns():
            if col not in rows:
                continue
            values = rows[col].astype(str).to_numpy()[m]
            entry["slices"][col] = {
                str(v): _paired(task["type"], y[values == v], cand[values == v], champ[values == v],
                                w[:, values == v] if w is not None else None, ev.interval)
                for v in sorted(pd.unique(values)) if (values == v).sum() >= ev.min_slice_rows
            }
        out[task["name"]] = entry
    return out


def mtl_gain(vs_baseline: dict, result: dict) -> dict:
    """Each task's gain over its single-task baseline (paired, as against a champion), the mean
    relative gain Δm over all tasks (Maninis et al., 2019: positive when multi-task learning helps
    on average), and the tasks with negative transfer: worse than their own single-task model,
    flagged as beyond noise when the gain's interval lies below zero."""
    tasks, relative, negative = {}, [], []
    for task, comp in vs_baseline.items():
        entry = {k: comp[k] for k in ("metric", "candidate", "champion", "gain", "gain_interval")}
        entry["baseline"] = entry.pop("champion")
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
