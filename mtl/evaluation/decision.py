"""From forecast to decision: what a panel's forecast is worth, in the units a planner uses.

At each test origin a series places an order up to a forecast of the demand the order must cover
(a periodic review whose period is data.panel.horizon, an order-up-to level). An order placed at
the origin arrives after the supplier's lead time, and the next chance to order is a review period
later, so it must cover the lead time plus the review period: the protection interval. With
data.panel.inventory the order is the level less the inventory position (on the shelf at the end
of the origin's day plus on order; never negative), and the interval is the series' promised lead
time plus the review, rounded up to the nearest horizon that has a forecast (data.panel.horizons;
the longest where none is long enough). Without it an order arrives at once and the shelf starts
empty: the interval is the review period.

Over the interval, a unit left over costs ``holding`` and a unit of demand not served costs
``lost_sale`` (evaluation.costs). The cost-optimal level is the quantile lost_sale / (lost_sale +
holding) of the interval's demand (the newsvendor's critical ratio), so the quantile task nearest
it at each horizon is the policy; seasonal naive (last week's sales, repeated), the mean
forecast, the boosted trees' quantile and the oracle mean are scored the same way on the same
rows. Judged on the rows whose interval has no stock-out (the task's own condition), whose sales
are their demand (a censored interval would understate what was lost).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import Config, InventoryCosts, TaskConfig
from mtl.data.columns import condition_mask


def period_cost(demand: np.ndarray, stock: np.ndarray, costs: InventoryCosts,
                position: np.ndarray | None = None) -> dict:
    """Holding plus lost sales of stocking up to ``stock`` against ``demand``, per example, from
    an inventory ``position`` (default none: an order never has to be negative); summed, per unit
    of demand, and the fill rate (the share of demand served)."""
    stock = np.maximum(np.round(stock), 0.0)  # whole units, never negative
    if position is not None:
        stock = np.maximum(stock, position)  # above the level already: nothing is ordered
    left, short = np.maximum(stock - demand, 0.0), np.maximum(demand - stock, 0.0)
    cost = costs.holding * left.sum() + costs.lost_sale * short.sum()
    total = float(demand.sum())
    return {"cost": float(cost), "cost_per_unit": float(cost / total) if total else None,
            "fill_rate": float(1.0 - short.sum() / total) if total else None}


def _policy_tasks(cfg: Config) -> dict[int, tuple[TaskConfig, TaskConfig | None]]:
    """Horizon days -> (the quantile task nearest the critical ratio, the mean forecast of the
    same label), for the sums label whose quantile task is nearest it; empty without one."""
    panel, ratio = cfg.data.panel, cfg.evaluation.costs.critical_ratio
    quantiles = [t for t in cfg.tasks if t.loss == "pinball" and panel.is_sum(t.label)]
    if not quantiles:
        return {}
    base = panel.label_horizons[min(quantiles, key=lambda t: abs(t.quantile - ratio)).label][0]
    out = {}
    for label, (b, days) in panel.label_horizons.items():
        at = [t for t in quantiles if t.label == label]
        if b != base or not at:
            continue
        mean = next((t for t in cfg.tasks if t.label == label and t.type == "regression" and t.loss != "pinball"),
                    None)
        out[days] = (min(at, key=lambda t: abs(t.quantile - ratio)), mean)
    return dict(sorted(out.items()))


def protection_horizon(needed: np.ndarray, horizons: list[int]) -> np.ndarray:
    """Each row's shortest horizon of at least ``needed`` days, else the longest."""
    h = np.asarray(horizons)
    i = np.minimum(np.searchsorted(h, needed, side="left"), len(h) - 1)
    return h[i]


def decision_costs(scores: pd.DataFrame, rows: pd.DataFrame, cfg: Config, trees: pd.DataFrame | None = None) -> dict | None:
    """Each stocking policy's cost on the test origins, and its saving against seasonal naive;
    None without a panel or a quantile task."""
    panel = cfg.data.panel
    if panel is None or not (tasks := _policy_tasks(cfg)):
        return None
    costs, review = cfg.evaluation.costs, panel.horizon
    n = len(rows)
    if panel.inventory is not None:
        lead = pd.to_numeric(rows["lead_days"], errors="coerce").to_numpy(dtype="float64")
        position = pd.to_numeric(rows["inventory_position"], errors="coerce").to_numpy(dtype="float64")
    else:
        lead, position = np.zeros(n), None
    needed = np.nan_to_num(lead, nan=0.0) + review
    horizon = protection_horizon(needed, list(tasks))
    y, m = np.full(n, np.nan), np.zeros(n, bool)
    pick = {}  # horizon -> its rows
    for days, (quantile, _) in tasks.items():
        at = horizon == days
        pick[days] = at
        y[at] = pd.to_numeric(rows[quantile.label], errors="coerce").to_numpy(dtype="float64")[at]
        m |= at & condition_mask(rows, quantile)
    m &= ~np.isnan(y) & ~np.isnan(lead) & (np.ones(n, bool) if position is None else ~np.isnan(position))

    def policy(column) -> np.ndarray | None:
        """Each row's forecast at its horizon; column(days, quantile task, mean task) names it."""
        stock = np.full(n, np.nan)
        for days, (quantile, mean) in tasks.items():
            name = column(days, quantile, mean)
            if name is None or name[1] not in name[0]:
                return None
            stock[pick[days]] = np.asarray(name[0][name[1]], dtype="float64")[pick[days]]
        return stock

    q = f"P{next(iter(tasks.values()))[0].quantile * 100:g}"
    candidates = {
        f"model {q}": policy(lambda d, t, _: (scores, t.name)),
        "seasonal naive": policy(lambda d, t, _: (rows, f"naive_{t.label}")),
        "model mean": policy(lambda d, t, mean: (scores, mean.name) if mean is not None else None),
        f"trees {q}": policy(lambda d, t, _: (trees, t.name)) if trees is not None else None,
        "oracle mean": policy(lambda d, t, _: (rows, f"truth_{t.label}")),
    }
    at = position[m] if position is not None else None
    out = {name: period_cost(y[m], stock[m], costs, at) for name, stock in candidates.items() if stock is not None}
    naive = out["seasonal naive"]["cost"]
    for entry in out.values():
        entry["saving_vs_naive"] = 1.0 - entry["cost"] / naive if naive else None
    return {"tasks": {str(d): t.name for d, (t, _) in tasks.items()}, "quantile": next(iter(tasks.values()))[0].quantile,
            "critical_ratio": costs.critical_ratio, "holding": costs.holding, "lost_sale": costs.lost_sale,
            "review_days": review, "inventory": position is not None, "rows": int(m.sum()),
            "rows_by_horizon": {str(d): int((m & pick[d]).sum()) for d in tasks},
            "short_horizon": int((m & (needed > horizon)).sum()), "policies": out}


def format_decision(decision: dict | None) -> list[str]:
    if not decision:
        return []
    fmt = lambda v, f="{:.4f}": f.format(v) if isinstance(v, (int, float)) else "-"  # noqa: E731
    if decision.get("inventory"):
        cover = (f"an order at the origin, up to each policy's forecast of the supplier's lead time plus the "
                 f"{decision['review_days']}-day review, less the stock on the shelf and on order")
    else:
        cover = f"stock up to each policy's forecast of the {decision['review_days']}-day review period"
    by = ", ".join(f"{d} days: {r:,}" for d, r in decision.get("rows_by_horizon", {}).items() if r)
    lines = ["", f"decision: {cover}",
             f"  a unit left costs {decision['holding']:g}, a unit short {decision['lost_sale']:g} (best: the "
             f"P{decision['critical_ratio'] * 100:g}); {decision['rows']:,} test origins ({by})"]
    if decision.get("short_horizon"):
        lines.append(f"  {decision['short_horizon']:,} of them need more days than the longest horizon "
                     f"forecast; they are judged on it (add a longer one to data.panel.horizons)")
    lines.append(f"{'policy':<22}{'cost':>12}{'per unit':>10}{'fill rate':>11}{'vs naive':>10}")
    for name, e in decision["policies"].items():
        lines.append(f"{name:<22}{e['cost']:>12,.0f}{fmt(e['cost_per_unit']):>10}{fmt(e['fill_rate']):>11}"
                     f"{fmt(e['saving_vs_naive'], '{:+.1%}'):>10}")
    return lines
