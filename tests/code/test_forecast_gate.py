"""A panel's forecasts are compared and gated on their own accuracy (WAPE, pinball; lower is
better), and the boosted-tree baseline fits each task with its own loss."""

import numpy as np
import pandas as pd
import pytest

from mtl.config import TaskConfig, parse_config
from mtl.data.features.transform import Arrays
from mtl.evaluation import gbdt
from mtl.evaluation.compare import compare, gate_metric
from mtl.evaluation.evaluate import evaluate_scores
from mtl.promotion.policy import decide

PANEL = {"series": ["item"], "sums": {"demand": "units"}, "events": {"stockout_next": "stockout"}, "horizon": 7}
CFG = parse_config({
    "data": {"panel": PANEL, "schema": {"categorical": []}},
    "tasks": [{"name": "demand", "label": "demand", "type": "regression", "loss": "poisson"},
              {"name": "demand_p90", "label": "demand", "type": "regression", "loss": "pinball", "quantile": 0.9},
              {"name": "stockout", "label": "stockout_next", "type": "binary"}],
    "evaluation": {"bootstrap": 40, "slices": []},
    "gate": {"tasks": {"demand": {"floor": 0.9, "max_regression": 0.01}, "demand_p90": {"max_regression": 0.5}},
             "slices": {}},
})


def _rows(n=600, seed=0):
    rng = np.random.default_rng(seed)
    mean = rng.gamma(2.0, 5.0, n)
    rows = pd.DataFrame({"item": rng.integers(0, 30, n).astype(str), "demand": rng.poisson(mean).astype(float),
                         "stockout_next": (rng.random(n) < 0.2).astype(int), "naive_demand": rng.poisson(mean),
                         "scale_mae_demand": 1.0, "scale_mse_demand": 1.0})
    return rows, mean


def test_forecasts_are_judged_on_wape_and_pinball_lower_is_better():
    tasks = {t.name: t for t in CFG.tasks}
    assert [gate_metric(tasks[n], CFG.data.panel) for n in ("demand", "demand_p90", "stockout")] == \
        ["wape", "pinball", "auc"]
    assert gate_metric(tasks["demand"], None) == "rmse"  # without a panel: as every regression task
    rows, mean = _rows()
    good = pd.DataFrame({"demand": mean, "demand_p90": mean * 1.5, "stockout": np.full(len(rows), 0.2)})
    bad = good.assign(demand=mean * 1.6, demand_p90=mean * 0.5)
    comparison = compare(good, bad, rows, CFG)
    assert comparison["demand"]["metric"] == "wape" and comparison["demand"]["gain"] > 0
    assert comparison["demand_p90"]["metric"] == "pinball" and comparison["demand_p90"]["gain"] > 0
    lo, hi = comparison["demand"]["gain_interval"]
    assert 0 < lo <= hi
    result = evaluate_scores(bad, rows, CFG)
    assert result["demand"]["gate_metric"] == "wape" and result["demand"]["wape"] == result["demand"]["forecast"]["wape"]
    types = {t.name: t.type for t in CFG.tasks}
    worse = decide(result, compare(bad, good, rows, CFG), types, CFG.gate)
    demand = next(t for t in worse.tasks if t.task == "demand")
    assert not demand.passed and demand.metric == "wape" and "worse by" in demand.reason
    assert not worse.promote
    # a floor on a lower-is-better metric is a ceiling: WAPE 0.9 passes this one, 0.3 not
    assert next(t for t in decide(result, None, types, CFG.gate).tasks if t.task == "demand").passed
    tight = CFG.gate.model_copy(update={"tasks": {"demand": CFG.gate.tasks["demand"].model_copy(update={"floor": 0.3})}})
    first = next(t for t in decide(result, None, types, tight).tasks if t.task == "demand")
    assert not first.passed and "above the ceiling 0.3000" in first.reason


def test_boosted_trees_fit_each_task_with_its_own_loss():
    rng = np.random.default_rng(1)
    n = 3000
    cat = np.stack([rng.integers(0, 6, n), rng.integers(0, 400, n)], 1).astype(np.int32)
    num = rng.normal(size=(n, 3)).astype(np.float32)
    mean = np.exp(0.8 * num[:, 0] + 0.3 * (cat[:, 0] == 2))
    units = rng.poisson(mean).astype(np.float32)
    event = (rng.random(n) < 1 / (1 + np.exp(-2 * num[:, 1]))).astype(np.float32)
    scale = float(units.mean())
    labels = np.stack([units / scale, units / scale, event], 1)
    arrays = Arrays(cat, num, labels, np.ones((n, 3), bool))
    train, test = arrays.take(np.arange(2000)), arrays.take(np.arange(2000, n))
    tasks = (TaskConfig(name="demand", label="u", type="regression", loss="poisson"),
             TaskConfig(name="p90", label="u", type="regression", loss="pinball", quantile=0.9),
             TaskConfig(name="event", label="e", type="binary"))
    targets = {"demand": {"mean": 0.0, "std": scale}, "p90": {"mean": 0.0, "std": scale}}
    scores = gbdt.fit_predict(train, test, tasks, targets, [6, 400], seed=0)
    y, truth = units[2000:], mean[2000:]
    assert list(scores.columns) == ["demand", "p90", "event"] and len(scores) == 1000
    assert np.mean((scores["demand"] - truth) ** 2) < 0.5 * np.mean((y.mean() - truth) ** 2)  # learnt the mean
    # a 90% quantile in label units (out of sample, from 2,000 rows: within a few points of 0.9)
    assert 0.8 < np.mean(y <= scores["p90"]) < 0.97 and np.mean(y <= scores["demand"]) < 0.75
    assert scores["event"].between(0, 1).all()
    from mtl.evaluation.metrics import auc
    assert auc(event[2000:], scores["event"].to_numpy()) > 0.75


def test_the_trees_see_a_panel_window_summarised():
    """Two weeks of lags day by day, older weeks as means, the window's means; a week of planned
    days, weekly means beyond; every other numeric input as it is."""
    from types import SimpleNamespace

    panel = SimpleNamespace(history=("units",), known=("price",), lookback=21, span=14)
    names = [f"units_lag{k}" for k in range(1, 22)] + [f"price_ahead{k}" for k in range(1, 15)] + ["open_orders"]
    num = np.random.default_rng(0).normal(size=(5, len(names))).astype(np.float32)
    out = num @ gbdt.summary(names, panel)
    expected = np.column_stack([num[:, :14], num[:, 14:21].mean(1), num[:, :7].mean(1), num[:, :21].mean(1),
                                num[:, 21:28], num[:, 28:35].mean(1), num[:, 35]])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(gbdt.summary(names, None), np.eye(len(names), dtype=np.float32))
    # a channel whose lags are not all numeric inputs (bucketised) is left as it is
    assert gbdt.summary(names[1:], panel).shape == (len(names) - 1, 20 + 8 + 1)
