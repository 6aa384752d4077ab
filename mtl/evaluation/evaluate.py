"""Per-task (and per-scenario) evaluation of scores against labelled raw rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from mtl.config import Config, TaskConfig
from mtl.data.columns import condition_mask
from mtl.evaluation import metrics
from mtl.evaluation.forecasting import forecast_entry, format_forecasts, is_forecast


def _task_rows(rows: pd.DataFrame, task: TaskConfig) -> np.ndarray:
    y = pd.to_numeric(rows[task.label], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return condition_mask(rows, task) & ~np.isnan(y)


def tasks_to_evaluate(tasks: Sequence[TaskConfig], only: str | None = None) -> list[TaskConfig]:
    """The tasks to evaluate: all of them, or just ``only`` (one mapped evaluation of the DAG)."""
    return [t for t in tasks if only in (None, t.name)]


def _metrics(task: TaskConfig, y: np.ndarray, s: np.ndarray, bins: int) -> dict:
    if task.type == "binary":
        return metrics.binary_metrics(y, s, bins)
    return metrics.regression_metrics(y, s)


def evaluate_scores(scores: pd.DataFrame, rows: pd.DataFrame, cfg: Config, only: str | None = None,
                    thresholds: dict[str, float | None] | None = None) -> dict:
    """Metrics per task on the rows where each task is defined, and per value of each slice column.

    ``scores`` has one column per task (as the served model returns); ``rows`` are the raw test
    rows with labels (and truth columns when the data has them). Binary tasks get AUC with its
    bootstrap interval, PR-AUC, log-loss, expected calibration error, GAUC (``evaluation.gauc_by``),
    the oracle AUC, and precision, recall, F1 and accuracy at the task's ``thresholds`` entry
    (the model's F1-maximising threshold on validation; None without one); funnel tasks also
    their AUC given the parent (CVR on clicks); regression tasks RMSE and MAE.
    """
    ev = cfg.evaluation
    schema = cfg.data.schema
    resamples = metrics.Resamples(len(rows), ev.bootstrap, ev.seed) if ev.bootstrap else None
    slice_values = {col: rows[col].astype(str).to_numpy() for col in cfg.slice_columns() if col in rows}
    result: dict[str, dict] = {}
    by_label = {t.label: t.name for t in cfg.tasks}
    for task in tasks_to_evaluate(cfg.tasks, only):
        m = _task_rows(rows, task)
        y = pd.to_numeric(rows[task.label], errors="coerce").to_numpy(dtype="float64")[m]
        s = scores[task.name].to_numpy(dtype="float64")[m]
        entry = {"type": task.type, **_metrics(task, y, s, ev.calibration_bins)}
        if task.type == "binary":
            entry |= metrics.threshold_metrics(y, s, (thresholds or {}).get(task.name))
        if task.type == "binary" and resamples is not None and entry["auc"] is not None:
            entry["auc_interval"] = metrics.interval(metrics.weighted_aucs(y, s, resamples.where(m)), ev.interval)
        if task.type == "binary" and ev.gauc_by and ev.gauc_by in rows:
            entry["gauc"] = metrics.gauc(y, s, rows[ev.gauc_by].astype(str).to_numpy()[m])
        parent = by_label.get(task.implies)
        if task.type == "binary" and parent is not None:
            entry["scope"] = "all impressions"  # e.g. purchase over impressions: the CTCVR AUC
            entry |= _conditional_auc(task, parent, scores, rows, m)
        truth_col = schema.truth.get(task.label)
        if task.type == "binary" and truth_col and truth_col in rows:
            entry["oracle_auc"] = metrics.auc(y, rows[truth_col].to_numpy(dtype="float64")[m])
        entry["slices"] = {}
        for col, values in slice_values.items():
            v_task = values[m]
            entry["slices"][col] = {
                str(v): _metrics(task, y[v_task == v], s[v_task == v], ev.calibration_bins)
                for v in sorted(pd.unique(v_task)) if (v_task == v).sum() >= ev.min_slice_rows
            }
        if is_forecast(task, cfg.data.panel):
            entry["forecast"] = forecast_entry(task, y, s, rows[m], cfg.data.panel,
                                               {c: v[m] for c, v in slice_values.items()}, ev.min_slice_rows)
            # what the gate judges a forecast on (mtl/evaluation/compare.py gate_metric)
            entry["gate_metric"] = "pinball" if task.loss == "pinball" else "wape"
            entry[entry["gate_metric"]] = entry["forecast"][entry["gate_metric"]]
        result[task.name] = entry
    return result


def _binary_tasks(scores: pd.DataFrame, rows: pd.DataFrame,
                  tasks: Sequence[TaskConfig]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(task, labels, scores) of each binary task, on the rows where the task is defined."""
    for task in tasks:
        if task.type == "binary":
            m = _task_rows(rows, task)
            y = pd.to_numeric(rows[task.label], errors="coerce").to_numpy(dtype="float64")[m]
            yield task.name, y, scores[task.name].to_numpy(dtype="float64")[m]


def at_thresholds(scores: pd.DataFrame, rows: pd.DataFrame, tasks: Sequence[TaskConfig],
                  thresholds: dict[str, float | None]) -> dict[str, dict]:
    """Per binary task, precision, recall, F1 and accuracy at its threshold, on the rows of its
    AUC: what ``evaluate_scores`` reports, without the rest (a single-task baseline's)."""
    return {name: metrics.threshold_metrics(y, s, thresholds.get(name))
            for name, y, s in _binary_tasks(scores, rows, tasks)}


def calibration_plots(scores: pd.DataFrame, rows: pd.DataFrame, tasks: Sequence[TaskConfig],
                      bins: int) -> dict[str, list[dict]]:
    """Reliability diagram points per binary task (mean prediction vs observed rate per bin)."""
    return {name: metrics.reliability(y, s, bins) for name, y, s in _binary_tasks(scores, rows, tasks)}


def _conditional_auc(task: TaskConfig, parent: str, scores: pd.DataFrame, rows: pd.DataFrame, m: np.ndarray) -> dict:
    """The funnel's other AUC: the task given its parent (CVR on clicked rows only).

    A model's score for the task is P(task) over impressions; dividing by its score for the
    parent gives P(task | parent), judged only where the parent label is 1. The key names the
    condition, so CVR (given click) is never confused with CTCVR (over impressions).
    """
    given = pd.to_numeric(rows[task.implies], errors="coerce").to_numpy(dtype="float64") == 1
    rows_given = m & given
    y = pd.to_numeric(rows[task.label], errors="coerce").to_numpy(dtype="float64")[rows_given]
    s = scores[task.name].to_numpy(dtype="float64")[rows_given]
    s_parent = np.clip(scores[parent].to_numpy(dtype="float64")[rows_given], 1e-12, None)
    return {f"auc_given_{task.implies}": metrics.auc(y, s / s_parent), f"rows_given_{task.implies}": int(rows_given.sum())}


def roc_plots(scores: pd.DataFrame, rows: pd.DataFrame, tasks: Sequence[TaskConfig]) -> dict[str, list[dict]]:
    return {name: metrics.roc_points(y, s) for name, y, s in _binary_tasks(scores, rows, tasks)}


def _gain_lines(gain: dict) -> list[str]:
    dm = gain.get("delta_m")
    negative = gain.get("negative_transfer") or []
    return ["", "multi-task gain over single-task baselines (AUC, or the reduction of RMSE, WAPE or pinball; "
            "* beyond noise): "
            f"mean relative gain Δm {dm:+.2%}" if dm is not None else "Δm undefined",
            "negative transfer: " + (", ".join(
                f"{n['task']} ({n['gain']:+.4f}{', beyond noise' if n['beyond_noise'] else ', within noise'})"
                for n in negative) if negative else "none")]


def _decision_lines(decision: dict) -> list[str]:
    lines = ["", f"promotion: {decision['summary']}"]
    for t in decision["tasks"]:
        lines.append(f"  {'PASS' if t['passed'] else 'FAIL'} {t['task']}: {t['reason']}")
    for t in decision.get("slices", []):
        lines.append(f"  {'PASS' if t['passed'] else 'FAIL'} {t['task']} on {t['slice']}: {t['reason']}")
    if decision.get("improvement"):
        lines.append(f"  {'PASS' if decision['improvement']['passed'] else 'FAIL'} improvement: "
                     f"{decision['improvement']['reason']}")
    return lines


# The figures per task that experiments are compared on (summary.json, DVC's metrics file).
HEADLINE = ("auc", "pr_auc", "logloss", "ece", "gauc", "oracle_auc", "f1", "rmse", "mae")
FORECAST_HEADLINE = ("wape", "mase", "rmsse", "bias", "pinball", "coverage")


def headline(result: dict, gain: dict | None = None) -> dict:
    """A few figures per task, and Δm: what `dvc exp show` and `dvc metrics diff` compare
    (metrics.json keeps everything, slices and intervals included)."""
    out: dict = {task: {k: round(float(e[k]), 5) for k in HEADLINE if e.get(k) is not None}
                 for task, e in result.items()}
    for task, e in result.items():  # a forecast's own figures (data.panel)
        out[task] |= {k: round(float(v), 5) for k, v in (e.get("forecast") or {}).items()
                      if k in FORECAST_HEADLINE and v is not None}
    if gain and gain.get("delta_m") is not None:
        out["delta_m"] = round(float(gain["delta_m"]), 5)
    return out


def format_table(result: dict, decision: dict | None = None, gain: dict | None = None) -> str:
    """The per-task table printed at the end of a run, with each slice value under its task, and
    (with ``gain``) each task's gain over its single-task baseline. F1@t, P@t and R@t: F1,
    precision and recall at the threshold chosen on validation."""
    fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "-"  # noqa: E731

    def ci(e: dict) -> str:
        iv = e.get("auc_interval")
        return f"[{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "-"

    gains = (gain or {}).get("tasks", {})

    def vs_single(name: str) -> str:
        g = gains.get(name) or {}
        if g.get("gain") is None:
            return "-"
        iv = g.get("gain_interval")
        flag = "" if not iv else (" *" if iv[0] > 0 or iv[1] < 0 else "")  # * : beyond noise
        return f"{g['gain']:+.4f}{flag}"

    head = (f"{'task':<26}{'rows':>8}  {'AUC':>7}  {'95% interval':>16}  {'oracle':>7}  {'PR-AUC':>7}  "
            f"{'logloss':>7}  {'ECE':>7}  {'GAUC':>7}  {'F1@t':>7}  {'P@t':>7}  {'R@t':>7}  {'RMSE':>8}"
            + (f"  {'vs single-task':>14}" if gains else ""))
    lines = [head]
    for name, e in result.items():
        lines.append(f"{name:<26}{e.get('rows', 0):>8}  {fmt(e.get('auc')):>7}  {ci(e):>16}  "
                     f"{fmt(e.get('oracle_auc')):>7}  {fmt(e.get('pr_auc')):>7}  {fmt(e.get('logloss')):>7}  "
                     f"{fmt(e.get('ece')):>7}  {fmt(e.get('gauc')):>7}  {fmt(e.get('f1')):>7}  "
                     f"{fmt(e.get('precision')):>7}  {fmt(e.get('recall')):>7}  {fmt(e.get('rmse')):>8}"
                     + (f"  {vs_single(name):>14}" if gains else ""))
        for key in e:
            if key.startswith("auc_given_"):
                given = key[len("auc_given_"):]
                label = f"  {name} given {given}"  # the conditional AUC (CVR), under its task
                lines.append(f"{label:<26}{e.get('rows_given_' + given, 0):>8}  {fmt(e[key]):>7}")
        for col, values in e.get("slices", {}).items():
            for v, se in values.items():
                label = f"  {col}={v}"
                lines.append(f"{label[:26]:<26}{se.get('rows', 0):>8}  {fmt(se.get('auc')):>7}  {'':>16}  {'':>7}  "
                             f"{fmt(se.get('pr_auc')):>7}  {fmt(se.get('logloss')):>7}  {fmt(se.get('ece')):>7}  "
                             f"{'':>7}  {'':>7}  {'':>7}  {'':>7}  {fmt(se.get('rmse')):>8}")
    lines += format_forecasts(result)
    if gains:
        lines += _gain_lines(gain)
    if decision is not None:
        lines += _decision_lines(decision)
    return "\n".join(lines)
