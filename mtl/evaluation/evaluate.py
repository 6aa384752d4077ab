"""Per-task (and per-scenario) evaluation of scores against labelled raw rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import Config
from mtl.data.features import condition_mask
from mtl.evaluation import metrics


def _task_rows(rows: pd.DataFrame, task: dict) -> np.ndarray:
    y = pd.to_numeric(rows[task["label"]], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return condition_mask(rows, task) & ~np.isnan(y)


def _metrics(task: dict, y: np.ndarray, s: np.ndarray) -> dict:
    return metrics.binary_metrics(y, s) if task["type"] == "binary" else metrics.regression_metrics(y, s)


def evaluate_scores(scores: pd.DataFrame, rows: pd.DataFrame, cfg: Config) -> dict:
    """Metrics per task on the rows where each task is defined, per scenario, with the oracle AUC.

    ``scores`` has one column per task (as the served model returns); ``rows`` are the raw test
    rows with labels (and truth columns when the data has them).
    """
    schema = cfg.data.schema
    result: dict[str, dict] = {}
    by_label = {t.label: t.name for t in cfg.tasks}
    for task in (t.model_dump(mode="json") for t in cfg.tasks):
        m = _task_rows(rows, task)
        y = pd.to_numeric(rows[task["label"]], errors="coerce").to_numpy(dtype="float64")[m]
        s = scores[task["name"]].to_numpy(dtype="float64")[m]
        entry = {"type": task["type"], **_metrics(task, y, s)}
        parent = by_label.get(task.get("implies"))
        if task["type"] == "binary" and parent is not None:
            entry["scope"] = "all impressions"  # e.g. purchase over impressions: the CTCVR AUC
            entry |= _conditional_auc(task, parent, scores, rows, m)
        truth_col = schema.truth.get(task["label"])
        if task["type"] == "binary" and truth_col and truth_col in rows:
            entry["oracle_auc"] = metrics.auc(y, rows[truth_col].to_numpy(dtype="float64")[m])
        if schema.scenario and schema.scenario in rows:
            scen = rows[schema.scenario].astype(str).to_numpy()[m]
            entry["scenarios"] = {
                str(v): _metrics(task, y[scen == v], s[scen == v]) for v in sorted(pd.unique(scen))
            }
        result[task["name"]] = entry
    return result


def _conditional_auc(task: dict, parent: str, scores: pd.DataFrame, rows: pd.DataFrame, m: np.ndarray) -> dict:
    """The funnel's other AUC: the task given its parent (CVR on clicked rows only).

    A model's score for the task is P(task) over impressions; dividing by its score for the
    parent gives P(task | parent), judged only where the parent label is 1. The key names the
    condition, so CVR (given click) is never confused with CTCVR (over impressions).
    """
    given = pd.to_numeric(rows[task["implies"]], errors="coerce").to_numpy(dtype="float64") == 1
    rows_given = m & given
    y = pd.to_numeric(rows[task["label"]], errors="coerce").to_numpy(dtype="float64")[rows_given]
    s = scores[task["name"]].to_numpy(dtype="float64")[rows_given]
    s_parent = np.clip(scores[parent].to_numpy(dtype="float64")[rows_given], 1e-12, None)
    return {f"auc_given_{task['implies']}": metrics.auc(y, s / s_parent), f"rows_given_{task['implies']}": int(rows_given.sum())}


def roc_plots(scores: pd.DataFrame, rows: pd.DataFrame, cfg: Config) -> dict[str, list[dict]]:
    out = {}
    for task in (t.model_dump(mode="json") for t in cfg.tasks):
        if task["type"] != "binary":
            continue
        m = _task_rows(rows, task)
        y = rows[task["label"]].to_numpy(dtype="float64")[m]
        out[task["name"]] = metrics.roc_points(y, scores[task["name"]].to_numpy()[m])
    return out


def format_table(result: dict, decision: dict | None = None) -> str:
    """The per-task table printed at the end of a run."""
    lines = [f"{'task':<14}{'type':<12}{'rows':>9}  {'test AUC':>9}  {'oracle AUC':>10}  {'logloss':>8}  {'RMSE':>8}"]
    fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
    for name, e in result.items():
        lines.append(
            f"{name:<14}{e['type']:<12}{e.get('rows', 0):>9}  {fmt(e.get('auc')):>9}  {fmt(e.get('oracle_auc')):>10}"
            f"  {fmt(e.get('logloss')):>8}  {fmt(e.get('rmse')):>8}"
        )
        for key in e:
            if key.startswith("auc_given_"):
                given = key[len("auc_given_"):]
                label = f"  {name} given {given}"  # the conditional AUC (CVR), under its task
                lines.append(f"{label:<26}{e.get('rows_given_' + given, 0):>9}  {fmt(e[key]):>9}")
    if decision is not None:
        lines.append("")
        lines.append(f"promotion: {decision['summary']}")
        for t in decision["tasks"]:
            lines.append(f"  {'PASS' if t['passed'] else 'FAIL'} {t['task']}: {t['reason']}")
    return "\n".join(lines)
