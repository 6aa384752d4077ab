"""Forecast accuracy metrics for count series: WAPE, bias, MASE, RMSSE, pinball loss.

Pure numpy over aligned arrays. A forecast example is one series at one origin: ``actual`` is
what happened over its horizon (units sold over the next H days), ``forecast`` the prediction.

Why these and not MAE alone: MAE-type metrics (MAE, MASE, WAPE) are minimised by the median, so on
intermittent series (mostly zero days) an all-zero forecast scores well; RMSSE, an RMSE-type
metric, is minimised by the mean and does not reward it. Both are reported, as in M5.

Scaled metrics divide each series' error by the in-sample error of seasonal naive (the same
weekday a season earlier) over the series' training days, as MASE defines it (Hyndman & Koehler
2006; RMSSE with squared errors, as in M5). Horizon errors are averaged per day (``/ horizon``) so
that they share the daily scale. A series whose training days have no seasonal change (all
zero, or constant) has no scale and is left out of the scaled means, and counted. As in
mtl.evaluation.metrics, an undefined metric is None, not 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def wape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Weighted absolute percentage error: sum |actual - forecast| / sum actual (None without units)."""
    total = float(np.sum(np.abs(actual)))
    return float(np.sum(np.abs(actual - forecast)) / total) if total > 0 else None


def bias(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Relative bias: sum (forecast - actual) / sum actual; > 0 over-forecasts (None without units)."""
    total = float(np.sum(actual))
    return float(np.sum(forecast - actual) / total) if total > 0 else None


def pinball(actual: np.ndarray, forecast: np.ndarray, quantile: float) -> float | None:
    """Mean quantile (pinball) loss of a ``quantile`` forecast: under-forecasts cost ``quantile``
    per unit, over-forecasts ``1 - quantile``."""
    if len(actual) == 0:
        return None
    diff = np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1.0) * diff)))


# Fewer validation rows than this leave a quantile forecast as trained: the adjustment would be noise.
MIN_CALIBRATION_ROWS = 200


def calibrated(forecast: np.ndarray, adjustment: dict) -> np.ndarray:
    """A quantile forecast moved by its :func:`conformal_adjustment`: f + c (|f| + m)."""
    f = np.asarray(forecast, dtype=np.float64)
    return f + adjustment["c"] * (np.abs(f) + adjustment["m"])


def conformal_adjustment(actual: np.ndarray, forecast: np.ndarray, quantile: float,
                         min_rows: int = MIN_CALIBRATION_ROWS) -> dict | None:
    """Split conformal calibration of a quantile forecast on held-out rows (Romano et al. 2019),
    with a normalised conformity score: each row's error over its own scale, the forecast's size
    plus the forecast's mean level, (y - f) / (|f| + m). The adjustment then grows with the
    series (a best seller's P90 moves by more units than a slow mover's) and still reaches rows
    forecast at zero (an intermittent item that did sell), which a pure ratio y / f cannot.

    c is the ceil((n + 1) q)-th smallest score: the finite-sample rank under which
    ``calibrated(f, {"c": c, "m": m})`` covers a new exchangeable row with probability at least q.
    Returns {"c", "m", "coverage": (before, after)}, or None, leaving the forecast as trained,
    with fewer than ``min_rows`` rows or when the adjustment does not also lower the pinball loss
    on these rows: coverage is what the quantile promises, the pinball loss what the gate and a
    planner stocking to it pay.
    """
    y = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    finite = np.isfinite(y) & np.isfinite(f)
    y, f = y[finite], f[finite]
    n = len(y)
    if n < min_rows:
        return None
    m = float(np.mean(np.abs(f))) or float(np.mean(np.abs(y)))
    if m <= 0:
        return None
    rank = min(int(np.ceil(quantile * (n + 1))), n)
    c = float(np.sort((y - f) / (np.abs(f) + m))[rank - 1])
    adjustment = {"c": c, "m": m}
    moved = calibrated(f, adjustment)
    if pinball(y, moved, quantile) >= pinball(y, f, quantile):
        return None
    return adjustment | {"coverage": [float(np.mean(y <= f)), float(np.mean(y <= moved))]}


def _groups(series: np.ndarray):
    """(series id, positions of its elements in their original order) for each series."""
    order = np.argsort(series, kind="stable")  # stable: keeps time order within a series
    ids, starts = np.unique(series[order], return_index=True)
    for sid, lo, hi in zip(ids.tolist(), starts, [*starts[1:], len(order)]):
        yield sid, order[lo:hi]


def seasonal_scales(values: np.ndarray, series: np.ndarray, season: int = 7) -> dict[object, tuple[float, float]]:
    """Each series' in-sample seasonal-naive error: (mean |y_t - y_{t-season}|, mean (y_t - y_{t-season})^2)
    over its training days. ``values`` are daily values in time order within each series;
    ``series`` names the series of each value."""
    scales = {}
    for sid, at in _groups(np.asarray(series)):
        y = np.asarray(values, dtype=float)[at]
        diff = y[season:] - y[:-season]
        if len(diff):
            scales[sid] = (float(np.mean(np.abs(diff))), float(np.mean(diff**2)))
    return scales


@dataclass(frozen=True)
class Scaled:
    """MASE and RMSSE averaged over the series that have a scale, and how many had none."""

    mase: float | None
    rmsse: float | None
    series: int
    unscaled: int


def scaled(actual: np.ndarray, forecast: np.ndarray, series: np.ndarray, scales: dict, horizon: int) -> Scaled:
    """MASE and RMSSE: per series, the mean daily error of its forecasts over its seasonal-naive
    scale, then the mean over series (each series counts once, however many origins it has)."""
    errors = (np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)) / horizon
    mase, rmsse, unscaled = [], [], 0
    for sid, at in _groups(np.asarray(series)):
        scale = scales.get(sid)
        if scale is None or scale[0] <= 0 or scale[1] <= 0:
            unscaled += 1
            continue
        mase.append(np.mean(np.abs(errors[at])) / scale[0])
        rmsse.append(np.sqrt(np.mean(errors[at] ** 2) / scale[1]))
    return Scaled(float(np.mean(mase)) if mase else None, float(np.mean(rmsse)) if rmsse else None, len(mase),
                  unscaled)
