"""A daily panel framed into forecast examples: one per series and forecast origin.

The origin is the last day an example may look at. Its features are the ``lookback`` days up to
and including the origin (``<col>_lag<k>``, k=1 the origin's day), the series' static columns,
the origin's weekday and month, the days of the horizon of columns known in advance
(``<col>_ahead<k>``: planned prices and promotions, the calendar) and, with orders, the orders
open at the origin. Its labels come from the ``horizon`` days after the origin only (and from the
first h days for each of ``horizons``: ``<label>_<h>d``). Nothing the
features hold is from after the origin (tests/data/test_framing.py changes every later day and
checks that the features stay the same).

Origins are ``origin_every`` days apart, staggered across series so every weekday is an origin
somewhere (a served forecast starts on any weekday). The backtest is by time, never random: the
last ``test_origins`` origins of every series are the test; the ``validation_origins`` before
them, ending the longest horizon before the first test origin, are validation; training origins
end the longest horizon before the first validation origin. So no example's labels reach a later split's
origins: the model never learns from the days it is tested on.

Pure: frames in, frames out. The panel's rows may come in any order; a series may start late or
end early (its missing days are never used), but a series with a day twice is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtl.config import PanelConfig

SPLIT = "split"  # the column the framed examples carry their split in (data.split.column's default)
ORIGIN = "origin"  # the origin's date


class FramingError(ValueError):
    """The panel cannot be framed; the message names the column or series and the fix."""


@dataclass(frozen=True)
class Grid:
    """The panel as (series, days) arrays over one calendar; a day a series lacks is absent."""

    keys: pd.DataFrame  # one row per series: its series and static columns
    dates: pd.DatetimeIndex
    values: dict[str, np.ndarray]  # column -> (series, days) float64, NaN where absent
    present: np.ndarray  # (series, days) bool


def feature_columns(cfg: PanelConfig) -> tuple[str, ...]:
    """The daily columns a forecast reads (no label or truth): what served history must hold."""
    orders = (cfg.orders.placed, cfg.orders.promised, cfg.orders.lead) if cfg.orders else ()
    return tuple(dict.fromkeys([*cfg.history, *cfg.known, *orders]))


def to_grid(panel: pd.DataFrame, cfg: PanelConfig, daily: tuple[str, ...] | None = None) -> Grid:
    """Pivot the panel's ``daily`` columns (default: every one data.panel names) to (series, days)
    arrays; FramingError on a missing column or a repeated day."""
    daily = cfg.daily_columns() if daily is None else daily
    needed = [*cfg.series, cfg.time, *cfg.static, *daily]
    missing = [c for c in dict.fromkeys(needed) if c not in panel.columns]
    if missing:
        raise FramingError(f"data.panel names column(s) {missing} that the data does not have; it has "
                           f"{list(panel.columns)}. Fix the names in data.panel or the data.")
    days = pd.to_datetime(panel[cfg.time]).dt.normalize()
    keys, series = _series_index(panel, cfg)
    dates = pd.date_range(days.min(), days.max(), freq="D")
    day = ((days - dates[0]) // pd.Timedelta(days=1)).to_numpy()
    cell = series * len(dates) + day
    if len(np.unique(cell)) != len(cell):
        dup = panel.iloc[np.flatnonzero(pd.Series(cell).duplicated().to_numpy())[:1]]
        where = ", ".join(f"{c}={dup.iloc[0][c]}" for c in [*cfg.series, cfg.time])
        raise FramingError(f"the panel has a day twice for one series ({where}): data.panel wants one row per "
                           f"series and day; aggregate the duplicates (e.g. sum the units) before training.")
    shape = (len(keys), len(dates))
    present = np.zeros(shape, bool)
    present.reshape(-1)[cell] = True
    values = {}
    for col in daily:
        grid = np.full(shape, np.nan)
        grid.reshape(-1)[cell] = pd.to_numeric(panel[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        values[col] = grid
    return Grid(keys, dates, values, present)


def _series_index(panel: pd.DataFrame, cfg: PanelConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """(one row per series: series and static columns, the first row's statics; each row's series number)."""
    codes = panel.groupby(list(cfg.series), sort=True, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(panel))).groupby(codes).first().to_numpy()
    keys = panel.iloc[first][[*cfg.series, *cfg.static]].reset_index(drop=True)
    return keys, codes


def _window_ok(present: np.ndarray, s: np.ndarray, t: np.ndarray, before: int, after: int) -> np.ndarray:
    """Whether days t-before+1 .. t+after of series s are all present (and inside the calendar)."""
    days = present.shape[1]
    inside = (t - before + 1 >= 0) & (t + after < days)
    counts = np.zeros((present.shape[0], days + 1), np.int64)
    np.cumsum(present, axis=1, out=counts[:, 1:])
    lo, hi = np.clip(t - before + 1, 0, days), np.clip(t + after + 1, 0, days)
    return inside & (counts[s, hi] - counts[s, lo] == before + after)


def backtest_origins(grid: Grid, cfg: PanelConfig) -> pd.DataFrame:
    """Every labelled origin with its split: columns series (row of grid.keys), t (day index), split."""
    n, days = grid.present.shape
    every, h = cfg.origin_every, cfg.span  # no label of any horizon reaches the next split
    last = days - 1 - h  # the last origin whose whole horizon is in the data
    first_test = last - (every - 1) - (cfg.test_origins - 1) * every
    first_validation = first_test - h - cfg.validation_origins * every + 1
    # series s has origins on days t with (last - t) % every == s % every: each window of `every`
    # consecutive days holds one origin of every series, on weekdays that differ across series
    s = np.repeat(np.arange(n), (last // every) + 2)
    j = np.tile(np.arange((last // every) + 2), n)
    t = last - s % every - j * every
    split = np.select([t >= first_test, (t <= first_test - h) & (t >= first_validation),
                       t <= first_validation - h], ["test", "validation", "train"], "")
    keep = (split != "") & _window_ok(grid.present, s, t, cfg.lookback, h)
    # the days training may see: up to the first validation origin (MASE's in-sample scale)
    if not (split[keep] == "train").any():
        raise FramingError(
            f"the panel's {days} days leave no training origin: lookback {cfg.lookback}, longest horizon {h}, "
            f"{cfg.test_origins} test and {cfg.validation_origins} validation origins {every} days apart need "
            f"at least {cfg.lookback + 3 * h + (cfg.test_origins + cfg.validation_origins) * every} days; "
            f"lower data.panel.lookback or the number of origins, or bring a longer history.")
    origins = pd.DataFrame({"series": s[keep], "t": t[keep], SPLIT: split[keep]})
    origins.attrs["training_days"] = first_validation
    return origins


def serving_origins(grid: Grid, cfg: PanelConfig) -> pd.DataFrame:
    """Each series' newest observed day (its history columns all set: days after it may carry
    only planned prices and promotions) that has its whole lookback: the next forecast's origin."""
    days = grid.present.shape[1]
    observed = grid.present.copy()
    for col in cfg.history:
        observed &= ~np.isnan(grid.values[col])
    last = days - 1 - np.argmax(observed[:, ::-1], axis=1)
    s = np.arange(len(last))
    ok = observed.any(axis=1) & _window_ok(observed, s, last, cfg.lookback, 0)
    return pd.DataFrame({"series": s[ok], "t": last[ok]})


def frame(panel: pd.DataFrame, cfg: PanelConfig) -> pd.DataFrame:
    """The backtest's examples: features, labels, truth and the split of every labelled origin."""
    grid = to_grid(panel, cfg)
    origins = backtest_origins(grid, cfg)
    return _examples(grid, cfg, origins, labels=True)


def frame_latest(panel: pd.DataFrame, cfg: PanelConfig) -> pd.DataFrame:
    """One unlabelled example per series at its newest day: what a served forecast reads."""
    grid = to_grid(panel, cfg, feature_columns(cfg))
    return _examples(grid, cfg, serving_origins(grid, cfg), labels=False)


def recent_history(panel: pd.DataFrame, cfg: PanelConfig, series: int = 8) -> pd.DataFrame:
    """The last ``lookback`` days of the first ``series`` series: what a served forecast needs
    (the packaged model's example, the pre-promotion load check)."""
    keys = panel[list(cfg.series)].drop_duplicates().head(series)
    rows = panel.merge(keys, on=list(cfg.series))
    day = pd.to_datetime(rows[cfg.time])
    return rows[day > day.max() - pd.Timedelta(days=cfg.lookback)].reset_index(drop=True)


def _examples(grid: Grid, cfg: PanelConfig, origins: pd.DataFrame, labels: bool) -> pd.DataFrame:
    s, t = origins["series"].to_numpy(), origins["t"].to_numpy()
    origin = grid.dates[t]
    out = {**{c: grid.keys[c].to_numpy()[s] for c in [*cfg.series, *cfg.static]},
           ORIGIN: origin, **dict(zip(cfg.CALENDAR, (origin.dayofweek.to_numpy(), origin.month.to_numpy())))}
    if SPLIT in origins:
        out[SPLIT] = origins[SPLIT].to_numpy()
    if labels:
        out |= _labels(grid, cfg, s, t)
        out |= _reference(grid, cfg, s, t, origins.attrs.get("training_days", grid.present.shape[1]))
    for col in cfg.history:
        lags = np.arange(cfg.lookback)  # lag k=1 is the origin's own day
        out |= dict(zip((f"{col}_lag{k + 1}" for k in lags), grid.values[col][s[:, None], t[:, None] - lags].T))
    days = grid.present.shape[1]
    ahead = t[:, None] + np.arange(1, cfg.span + 1)
    for col in cfg.known:  # NaN (imputed by the transform) for horizon days the data does not plan yet
        known = np.where(ahead < days, grid.values[col][s[:, None], np.minimum(ahead, days - 1)], np.nan)
        out |= dict(zip((f"{col}_ahead{k}" for k in range(1, cfg.span + 1)), known.T))
    if cfg.orders is not None:
        out |= _open_orders(grid, cfg, s, t, labels)
    return pd.DataFrame(out)


def _horizon(grid: Grid, col: str, s: np.ndarray, t: np.ndarray, h: int) -> np.ndarray:
    return grid.values[col][s[:, None], t[:, None] + np.arange(1, h + 1)]


def _labels(grid: Grid, cfg: PanelConfig, s: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for label, (base, h) in cfg.label_horizons.items():
        if base in cfg.sums:
            out[label] = _horizon(grid, cfg.sums[base], s, t, h).sum(axis=1)
        else:
            out[label] = (_horizon(grid, cfg.events[base], s, t, h) > 0).any(axis=1).astype(np.int8)
        if (truth := cfg.truth_of(label)) is not None:
            days = _horizon(grid, truth, s, t, h)
            out[f"truth_{label}"] = days.sum(axis=1) if base in cfg.sums else 1.0 - np.prod(1.0 - days, axis=1)
    return out


def _reference(grid: Grid, cfg: PanelConfig, s: np.ndarray, t: np.ndarray, training_days: int) -> dict[str, np.ndarray]:
    """Per sums label at each horizon: seasonal naive (each horizon day is the same weekday of the
    week before the origin: only days up to the origin), and its in-sample daily error over the
    series' training days, the scale of MASE (absolute) and RMSSE (squared). With inventory, the
    stock at the end of the origin's day (on the shelf less that day's sales, plus on order) and
    the supplier's lead time then: what an order placed at the origin starts from."""
    out = {}
    scales = {}  # per sums label: the daily scale, the same at every horizon
    for base, col in cfg.sums.items():
        train = grid.values[col][:, :training_days]
        diff = train[:, cfg.SEASON:] - train[:, :-cfg.SEASON]  # NaN where a day is absent: left out
        with np.errstate(invalid="ignore"):
            scales[base] = tuple(np.nanmean(e, axis=1)[s] if diff.shape[1] else np.full(len(s), np.nan)
                                 for e in (np.abs(diff), diff**2))
    for label, (base, h) in cfg.label_horizons.items():
        if base not in cfg.sums:
            continue
        k = np.arange(1, h + 1)
        back = t[:, None] + k - cfg.SEASON * np.ceil(k / cfg.SEASON).astype(int)
        out[f"naive_{label}"] = grid.values[cfg.sums[base]][s[:, None], back].sum(axis=1)
        out[f"scale_mae_{label}"], out[f"scale_mse_{label}"] = scales[base]
    if (inv := cfg.inventory) is not None:
        at = {c: grid.values[c][s, t] for c in (inv.on_hand, inv.sold, inv.on_order)}
        # a panel may record the promised lead only on the days an order is placed: the latest
        # promise up to the origin then stands
        at[inv.lead] = pd.DataFrame(grid.values[inv.lead]).ffill(axis=1).to_numpy()[s, t]
        out["inventory_position"] = at[inv.on_hand] - at[inv.sold] + at[inv.on_order]
        out["lead_days"] = at[inv.lead]
    return out


def _open_orders(grid: Grid, cfg: PanelConfig, s: np.ndarray, t: np.ndarray, labels: bool) -> dict[str, np.ndarray]:
    """Orders placed up to the origin and not yet arrived by it: their count, units and the days
    the most overdue is past its promised day (features, known at the origin), and whether any
    arrives after its promised day (the label; NaN without an open order).

    An order placed on day p with realised lead L arrives on the morning of p + L, so it is open
    at origins p .. p + L - 1; at such an origin only that it has not arrived is known, not L.
    """
    o = cfg.orders
    d = np.arange(max(_max_open(grid, o), cfg.lookback))[None, :]  # days before the origin an order was placed
    day = np.maximum(t[:, None] - d, 0)
    placed, promised, lead = (grid.values[c][s[:, None], day] for c in (o.placed, o.promised, o.lead))
    placed, promised = np.nan_to_num(placed), np.nan_to_num(promised)
    # open: placed, and not arrived by the origin's morning (lead > d), which the origin knows; an
    # order with no lead yet (served history: it has not arrived) is open
    lead = np.where(np.isnan(lead), np.inf, lead)
    open_ = (placed > 0) & (lead > d) & (t[:, None] - d >= 0)
    out = dict(zip(cfg.ORDER_FEATURES, (
        open_.sum(axis=1).astype(np.float64),
        np.where(open_, placed, 0.0).sum(axis=1),
        np.where(open_, np.maximum(d - promised, 0), 0).max(axis=1, initial=0).astype(np.float64))))
    if labels:
        late = (open_ & (lead > promised)).any(axis=1)
        out[o.label] = np.where(open_.any(axis=1), late.astype(float), np.nan)
    return out


def _max_open(grid: Grid, orders) -> int:
    """The longest an order stayed open in the panel: how far back an origin must look for its orders."""
    lead = grid.values[orders.lead]
    return int(np.nanmax(lead, initial=1)) if np.isfinite(lead).any() else 1
