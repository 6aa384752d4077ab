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
    assert d["task"] == "p90" and d["rows"] == 3  # the stocked-out horizon is not judged
    naive = 9 * 2 + 1 * 2  # 2 short on the first, 2 left on the second
    assert d["policies"]["seasonal naive"]["cost"] == naive
    assert d["policies"]["model P90"]["cost"] == 3 * 3 and d["policies"]["model P90"]["saving_vs_naive"] == \
        pytest.approx(1 - 9 / naive)
    assert d["policies"]["oracle mean"]["cost"] == 0 and d["policies"]["model mean"]["fill_rate"] == 1.0
    assert decision_costs(scores, rows, _cfg(1.0))["task"] == "p50"  # equal costs: the median
    assert "model P90" in "\n".join(format_decision(d))
    no_panel = parse_config({"data": {"schema": {"categorical": ["u"], "labels": ["y"]}},
                             "tasks": [{"name": "y", "label": "y", "type": "regression"}]})
    assert decision_costs(scores, rows, no_panel) is None
