"""From forecast to decision (mtl/evaluation/decision.py): each stocking policy's cost against a
hand computation, and the policy is the quantile the costs call for."""

import numpy as np
import pandas as pd
import pytest

from mtl.config import InventoryCosts, parse_config
from mtl.evaluation.decision import decision_costs, format_decision, period_cost


def test_period_cost_by_hand():
    costs = InventoryCosts(holding=1.0, lost_sale=9.0)
    demand = np.array([10.0, 4.0, 0.0])
    stock = np.array([12.4, 1.0, 2.0])  # rounded to whole units: 12 (2 left), 1 (3 short), 2 (2 left)
    e = period_cost(demand, stock, costs)
    assert e["cost"] == 1 * (2 + 2) + 9 * 3
    assert e["cost_per_unit"] == pytest.approx(31 / 14) and e["fill_rate"] == pytest.approx(11 / 14)
    assert costs.critical_ratio == 0.9 and InventoryCosts(holding=1, lost_sale=1).critical_ratio == 0.5


def _cfg(lost_sale: float):
    return parse_config({
        "data": {"panel": {"series": ["item"], "sums": {"demand": "units"}, "events": {"out": "stockout"}},
                 "schema": {"categorical": []}},
        "tasks": [{"name": "mean", "label": "demand", "type": "regression", "loss": "poisson",
                   "condition": {"column": "out", "equals": 0}},
                  {"name": "p50", "label": "demand", "type": "regression", "loss": "pinball", "quantile": 0.5,
                   "condition": {"column": "out", "equals": 0}},
                  {"name": "p90", "label": "demand", "type": "regression", "loss": "pinball", "quantile": 0.9,
                   "condition": {"column": "out", "equals": 0}}],
        "evaluation": {"costs": {"holding": 1.0, "lost_sale": lost_sale}},
    })


def test_the_policy_is_the_quantile_the_costs_call_for_on_horizons_without_a_stock_out():
    rows = pd.DataFrame({"item": ["a"] * 4, "demand": [10.0, 10.0, 10.0, 50.0], "out": [0, 0, 0, 1],
                         "naive_demand": [8.0, 12.0, 10.0, 0.0], "truth_demand": [10.0] * 4})
    scores = pd.DataFrame({"mean": [10.0] * 4, "p50": [9.0] * 4, "p90": [13.0] * 4})
    d = decision_costs(scores, rows, _cfg(9.0))
    assert d["tasks"] == {"7": "p90"} and d["rows"] == 3  # the stocked-out horizon is not judged
    naive = 9 * 2 + 1 * 2  # 2 short on the first, 2 left on the second
    assert d["policies"]["seasonal naive"]["cost"] == naive
    assert d["policies"]["model P90"]["cost"] == 3 * 3 and d["policies"]["model P90"]["saving_vs_naive"] == \
        pytest.approx(1 - 9 / naive)
    assert d["policies"]["oracle mean"]["cost"] == 0 and d["policies"]["model mean"]["fill_rate"] == 1.0
    assert decision_costs(scores, rows, _cfg(1.0))["tasks"] == {"7": "p50"}  # equal costs: the median
    assert "model P90" in "\n".join(format_decision(d))
    no_panel = parse_config({"data": {"schema": {"categorical": ["u"], "labels": ["y"]}},
                             "tasks": [{"name": "y", "label": "y", "type": "regression"}]})
    assert decision_costs(scores, rows, no_panel) is None


def test_an_order_covers_the_lead_time_and_the_review_from_the_inventory_position():
    """Lead 3 + review 7 = 10 days: the 14-day P90 (the shortest horizon that long); lead 0: the
    7-day one; lead 20 needs 27 days, more than the longest forecast: judged on 14 and counted.
    The order is the level less the stock on the shelf and on order, never negative."""
    cfg = parse_config({
        "data": {"panel": {"series": ["item"], "sums": {"demand": "units"}, "events": {"out": "stockout"},
                           "horizon": 7, "horizons": [14], "inventory": {}},
                 "schema": {"categorical": []}},
        "tasks": [{"name": "p90", "label": "demand", "type": "regression", "loss": "pinball", "quantile": 0.9,
                   "condition": {"column": "out", "equals": 0}},
                  {"name": "p90_14", "label": "demand_14d", "type": "regression", "loss": "pinball", "quantile": 0.9,
                   "condition": {"column": "out_14d", "equals": 0}}],
    })
    rows = pd.DataFrame({"item": list("abcd"), "lead_days": [3, 0, 20, 3], "inventory_position": [5, 30, 0, 0],
                         "demand": [9, 10, 6, 9], "demand_14d": [20, 25, 10, 20], "out": 0, "out_14d": [0, 0, 0, 1],
                         "naive_demand": [8, 8, 5, 8], "naive_demand_14d": [16, 16, 10, 16]})
    scores = pd.DataFrame({"p90": [11, 12, 7, 11], "p90_14": [22, 26, 10, 22]})
    d = decision_costs(scores, rows, cfg)
    assert d["tasks"] == {"7": "p90", "14": "p90_14"} and d["inventory"]
    assert d["rows"] == 3 and d["rows_by_horizon"] == {"7": 1, "14": 2} and d["short_horizon"] == 1
    # a: up to 22 from 5 over 14 days of 20 -> 2 left; b: 30 on hand is above 12 -> 20 left of 10;
    # c: 10 against 10 over 14 days; d: a stock-out in its 14 days, not judged
    assert d["policies"]["model P90"]["cost"] == 2 + 20 + 0
    # naive: a 16 against 20 -> 4 short (36); b the same 20 left; c 10 against 10
    assert d["policies"]["seasonal naive"]["cost"] == 9 * 4 + 20
    assert "model mean" not in d["policies"] and "oracle mean" not in d["policies"]
    text = "\n".join(format_decision(d))
    assert "lead time" in text and "1 of them need more days" in text
