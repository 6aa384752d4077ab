"""From forecast to decision: what a panel's forecast is worth, in the units a planner uses.

At each test origin a series stocks up to a forecast of the horizon's demand (a periodic review
whose period is the horizon: an order-up-to level). Over the horizon, a unit left over costs
``holding`` and a unit of demand not served costs ``lost_sale`` (evaluation.costs). The
cost-optimal level is the quantile lost_sale / (lost_sale + holding) of demand (the newsvendor's
critical ratio), so the quantile task nearest it is the policy; seasonal naive (last week's
sales), the mean forecast, the boosted trees' quantile and the oracle mean are scored the same
way on the same rows. Judged on the demand task's rows: horizons without a stock-out, whose sales
are their demand (a censored horizon would understate what was lost). The supplier's lead time
is not modelled: the order is assumed to arrive by the start of the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import Config, InventoryCosts, TaskConfig
from mtl.data.columns import condition_mask


def period_cost(demand: np.ndarray, stock: np.ndarray, costs: InventoryCosts) -> dict:
    """Holding plus lost sales of stocking ``stock`` against ``demand``, per example; summed,
    per unit of demand, and the fill rate (the share of demand served)."""
    stock = np.maximum(np.round(stock), 0.0)  # whole units, never negative
    left, short = np.maximum(stock - demand, 0.0), np.maximum(demand - stock, 0.0)
    cost = costs.holding * left.sum() + costs.lost_sale * short.sum()
    total = float(demand.sum())
    return {"cost": float(cost), "cost_per_unit": float(cost / total) if total else None,
            "fill_rate": float(1.0 - short.sum() / total) if total else None}


def _policy_task(cfg: Config) -> tuple[TaskConfig, TaskConfig | None] | None:
    """(the quantile task nearest the critical ratio, the mean forecast of the same label)."""
    panel, ratio = cfg.data.panel, cfg.evaluation.costs.critical_ratio
    quantiles = [t for t in cfg.tasks if t.loss == "pinball" and t.label in panel.sums]
    if not quantiles:
        return None
    chosen = min(quantiles, key=lambda t: abs(t.quantile - ratio))
    mean = next((t for t in cfg.tasks if t.label == chosen.label and t.type == "regression" and t.loss != "pinball"),
                None)
    return chosen, mean


def decision_costs(scores: pd.DataFrame, rows: pd.DataFrame, cfg: Config, trees: pd.DataFrame | None = None) -> dict | None:
    """Each stocking policy's cost on the test origins, and its saving against seasonal naive;
    None without a panel or a quantile task."""
    if cfg.data.panel is None or (tasks := _policy_task(cfg)) is None:
        return None
    quantile, mean = tasks
    label, costs = quantile.label, cfg.evaluation.costs
    y = pd.to_numeric(rows[label], errors="coerce").to_numpy(dtype="float64")
    m = condition_mask(rows, quantile) & ~np.isnan(y)
    policies = {f"model P{quantile.quantile * 100:g}": scores[quantile.name], "seasonal naive": rows[f"naive_{label}"]}
    if mean is not None:
        policies["model mean"] = scores[mean.name]
    if trees is not None and quantile.name in trees:
        policies[f"trees P{quantile.quantile * 100:g}"] = trees[quantile.name]
    if f"truth_{label}" in rows:
        policies["oracle mean"] = rows[f"truth_{label}"]
    out = {name: period_cost(y[m], np.asarray(stock, dtype="float64")[m], costs) for name, stock in policies.items()}
    naive = out["seasonal naive"]["cost"]
    for entry in out.values():
        entry["saving_vs_naive"] = 1.0 - entry["cost"] / naive if naive else None
    return {"task": quantile.name, "quantile": quantile.quantile, "critical_ratio": costs.critical_ratio,
            "holding": costs.holding, "lost_sale": costs.lost_sale, "rows": int(m.sum()), "policies": out}


def format_decision(decision: dict | None) -> list[str]:
    if not decision:
        return []
    fmt = lambda v, f="{:.4f}": f.format(v) if isinstance(v, (int, float)) else "-"  # noqa: E731
    lines = ["", f"decision: stock up to each policy's forecast of the horizon; a unit left costs "
                 f"{decision['holding']:g}, a unit short {decision['lost_sale']:g} (best: the "
                 f"P{decision['critical_ratio'] * 100:g}); {decision['rows']:,} test origins",
             f"{'policy':<22}{'cost':>12}{'per unit':>10}{'fill rate':>11}{'vs naive':>10}"]
    for name, e in decision["policies"].items():
        lines.append(f"{name:<22}{e['cost']:>12,.0f}{fmt(e['cost_per_unit']):>10}{fmt(e['fill_rate']):>11}"
                     f"{fmt(e['saving_vs_naive'], '{:+.1%}'):>10}")
    return lines
