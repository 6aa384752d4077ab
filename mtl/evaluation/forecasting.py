"""The forecast view of a panel's regression tasks (data.panel): accuracy in the units a planner
uses, beside seasonal naive and the oracle, on the backtest's test origins.

A task whose label is one of data.panel.sums (at any of its horizons) is a forecast of that sum
over its horizon. Its
entry holds WAPE, bias, MASE and RMSSE (mtl/evaluation/forecast.py) of the model, of seasonal
naive (the same weekdays a week before the origin: framing's ``naive_<label>``) and of the
oracle (the true expected demand, ``truth_<label>``, where the data has it); a quantile task
(loss pinball) its pinball loss and coverage (the share of actuals at or below the forecast),
beside seasonal naive's pinball. WAPE and bias per slice value (warehouse, category).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import PanelConfig, TaskConfig
from mtl.evaluation import forecast


def is_forecast(task: TaskConfig, panel: PanelConfig | None) -> bool:
    return panel is not None and task.type == "regression" and panel.is_sum(task.label)


def _accuracy(y: np.ndarray, pred: np.ndarray, series: np.ndarray, scales: dict, horizon: int) -> dict:
    scaled = forecast.scaled(y, pred, series, scales, horizon)
    return {"wape": forecast.wape(y, pred), "bias": forecast.bias(y, pred), "mase": scaled.mase,
            "rmsse": scaled.rmsse}


def forecast_entry(task: TaskConfig, y: np.ndarray, pred: np.ndarray, rows: pd.DataFrame, panel: PanelConfig,
                   slices: dict[str, np.ndarray], min_rows: int) -> dict:
    """``rows``: the task's test rows (framed examples); ``y``, ``pred`` aligned with them;
    ``slices``: column -> each row's value."""
    label = task.label
    naive = rows[f"naive_{label}"].to_numpy(dtype="float64")
    if task.loss == "pinball":
        q = task.quantile
        return {"quantile": q, "pinball": forecast.pinball(y, pred, q), "coverage": float(np.mean(y <= pred)),
                "naive": {"pinball": forecast.pinball(y, naive, q)}, "rows": int(len(y)),
                "horizon": panel.horizon_of(label)}
    series = pd.MultiIndex.from_frame(rows[list(panel.series)].astype(str)).to_flat_index().to_numpy()
    first = ~pd.Series(series).duplicated().to_numpy()
    scales = dict(zip(series[first], zip(rows[f"scale_mae_{label}"].to_numpy()[first],
                                         rows[f"scale_mse_{label}"].to_numpy()[first])))
    horizon = panel.horizon_of(label)
    entry = {**_accuracy(y, pred, series, scales, horizon), "rows": int(len(y)), "horizon": horizon,
             "naive": _accuracy(y, naive, series, scales, horizon)}
    truth = f"truth_{label}"
    if truth in rows:
        entry["oracle"] = _accuracy(y, rows[truth].to_numpy(dtype="float64"), series, scales, horizon)
    entry["slices"] = {col: {str(v): {"wape": forecast.wape(y[values == v], pred[values == v]),
                                      "bias": forecast.bias(y[values == v], pred[values == v]),
                                      "naive_wape": forecast.wape(y[values == v], naive[values == v]),
                                      "rows": int((values == v).sum())}
                             for v in sorted(pd.unique(values)) if (values == v).sum() >= min_rows}
                       for col, values in slices.items()}
    return entry


def format_forecasts(result: dict) -> list[str]:
    """The forecast table (empty without forecast tasks): each task beside seasonal naive, the
    boosted trees (when the baseline stage fitted them) and the oracle; then the AUC of each
    event task beside the trees'."""
    entries = {name: e["forecast"] for name, e in result.items() if e.get("forecast")}
    if not entries:
        return []
    fmt = lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "-"  # noqa: E731

    def group(f: dict) -> str:
        return f"{fmt(f.get('wape')):>7}{fmt(f.get('mase')):>8}{fmt(f.get('rmsse')):>8}{fmt(f.get('pinball')):>9}"

    lines = ["", f"{'forecast':<22}{'days':>5}{'WAPE':>7}{'MASE':>8}{'RMSSE':>8}{'pinball':>9}{'bias':>8}{'cover':>7}"
             + "".join(f"  | {who:<6}{'WAPE':>7}{'MASE':>8}{'RMSSE':>8}{'pinball':>9}" for who in ("naive", "trees"))
             + f"  | {'oracle':<6}{'WAPE':>7}{'MASE':>8}{'RMSSE':>8}"]
    for name, f in entries.items():
        trees = result[name].get("gbdt", {})
        lines.append(f"{name:<22}{f.get('horizon', '-'):>5}{group(f)}{fmt(f.get('bias')):>8}{fmt(f.get('coverage')):>7}"
                     f"  | {'':<6}{group(f.get('naive', {}))}  | {'':<6}{group(trees)}"
                     f"  | {'':<6}{group(f.get('oracle', {}))[:-9]}")
        for col, values in f.get("slices", {}).items():
            for v, se in values.items():
                label = f"  {col}={v}"
                lines.append(f"{label[:22]:<22}{'':>5}{fmt(se.get('wape')):>7}{'':>25}{fmt(se.get('bias')):>8}{'':>7}"
                             f"  | {'':<6}{fmt(se.get('naive_wape')):>7}")
    events = {name: e for name, e in result.items() if e.get("type") == "binary" and e.get("gbdt")}
    if events:
        lines += ["", f"{'event':<22}{'AUC':>7}{'PR-AUC':>8}  | {'trees':<6}{'AUC':>7}{'PR-AUC':>8}"]
        lines += [f"{name:<22}{fmt(e.get('auc')):>7}{fmt(e.get('pr_auc')):>8}  | {'':<6}{fmt(e['gbdt'].get('auc')):>7}"
                  f"{fmt(e['gbdt'].get('pr_auc')):>8}" for name, e in events.items()]
    return lines
