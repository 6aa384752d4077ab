"""Evaluation names what it measures: CTCVR over impressions vs CVR given a click."""

import numpy as np
import pandas as pd
import pytest

from mtl.config import parse_config
from mtl.evaluation import metrics
from mtl.evaluation.evaluate import evaluate_scores, format_table

CFG = parse_config({
    "data": {"schema": {"categorical": ["u"], "labels": ["click", "buy"]}},
    "tasks": [{"name": "ctr", "label": "click", "type": "binary"},
              {"name": "ctcvr", "label": "buy", "type": "binary", "implies": "click"}],
})


def test_funnel_task_reports_both_aucs_under_names_that_say_which():
    rng = np.random.default_rng(0)
    n = 4000
    p_click = rng.uniform(0.05, 0.6, n)
    p_buy_given_click = rng.uniform(0.05, 0.5, n)
    click = (rng.random(n) < p_click).astype(int)
    buy = click * (rng.random(n) < p_buy_given_click)
    rows = pd.DataFrame({"u": 0, "click": click, "buy": buy})
    scores = pd.DataFrame({"ctr": p_click, "ctcvr": p_click * p_buy_given_click})
    result = evaluate_scores(scores, rows, CFG)
    e = result["ctcvr"]
    assert e["scope"] == "all impressions"
    assert e["auc"] == pytest.approx(metrics.auc(buy, p_click * p_buy_given_click))
    clicked = click == 1
    assert e["rows_given_click"] == clicked.sum()
    assert e["auc_given_click"] == pytest.approx(metrics.auc(buy[clicked], p_buy_given_click[clicked]))
    assert e["auc_given_click"] < e["auc"]  # over impressions the click signal inflates the AUC
    assert "auc_given_click" not in result["ctr"]
    assert "  ctcvr given click" in format_table(result)


# --- metrics beyond AUC ------------------------------------------------------------------------

def _log(n=6000, seed=0, users=40):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.6, n)
    rows = pd.DataFrame({"u": rng.integers(0, users, n).astype(str), "s": rng.choice(["a", "b", "c"], n),
                         "click": (rng.random(n) < p).astype(int)})
    rows["buy"] = rows["click"] * (rng.random(n) < 0.3)
    return rows, p


def test_weighted_auc_with_unit_weights_is_roc_auc_including_ties():
    rows, p = _log()
    y, s = rows["click"].to_numpy(float), np.round(p, 2)  # rounding makes many ties
    assert metrics.weighted_aucs(y, s, [np.ones(len(y))])[0] == pytest.approx(metrics.auc(y, s))


def test_resamples_are_reproducible_and_narrow_without_redrawing():
    res = metrics.Resamples(10, 3, seed=4)
    full = list(res)
    assert all((a == b).all() for a, b in zip(full, res))  # drawn again: the same weights
    mask = np.arange(10) % 2 == 0
    inner = np.zeros(5, bool)
    inner[[1, 3]] = True
    narrowed = list(res.where(mask).where(inner))
    assert all((n == f[[2, 6]]).all() for n, f in zip(narrowed, full))


def test_auc_interval_covers_the_truth_and_narrows_with_rows():
    widths = []
    for n in (2000, 20000):
        rows, p = _log(n)
        y = rows["click"].to_numpy(float)
        lo, hi = metrics.interval(metrics.weighted_aucs(y, p, metrics.Resamples(n, 200, 1)), 0.95)
        assert lo < metrics.auc(y, p) < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(n): 10x the rows, ~3x narrower


def test_gauc_is_the_row_weighted_mean_of_per_user_aucs():
    rows, p = _log()
    y, users = rows["click"].to_numpy(float), rows["u"].to_numpy()
    per_user = [(m.sum(), metrics.auc(y[m], p[m])) for m in (users == u for u in np.unique(users))]
    expected = sum(n * a for n, a in per_user if a is not None) / sum(n for n, a in per_user if a is not None)
    assert metrics.gauc(y, p, users) == pytest.approx(expected)


def test_ece_is_near_zero_for_true_probabilities_and_large_when_overconfident():
    rows, p = _log(50000)
    y = rows["click"].to_numpy(float)
    assert metrics.ece(y, p) < 0.01
    assert metrics.ece(y, np.clip(p * 1.6, 0, 1)) > 0.08
    assert metrics.pr_auc(y, p) > y.mean()  # better than a random ranking's precision


def test_evaluation_reports_intervals_gauc_calibration_and_slices():
    cfg = parse_config({
        "data": {"schema": {"categorical": ["u", "s"], "labels": ["click", "buy"], "scenario": "s"}},
        "tasks": [{"name": "ctr", "label": "click", "type": "binary"}],
        "evaluation": {"gauc_by": "u", "min_slice_rows": 1000},
    })
    rows, p = _log()
    result = evaluate_scores(pd.DataFrame({"ctr": p}), rows, cfg)["ctr"]
    lo, hi = result["auc_interval"]
    assert lo < result["auc"] < hi
    assert result["gauc"] is not None and result["ece"] is not None and result["pr_auc"] is not None
    assert set(result["slices"]["s"]) == {"a", "b", "c"}  # ~2000 rows each, above min_slice_rows
    assert sum(v["rows"] for v in result["slices"]["s"].values()) == len(rows)
    table = format_table({"ctr": result})
    assert "s=a" in table and "[" in table


# --- the paired comparison the gate reads --------------------------------------------------------

def test_compare_tells_a_real_regression_from_noise():
    from mtl.evaluation.compare import compare

    cfg = parse_config({
        "data": {"schema": {"categorical": ["u", "s"], "labels": ["click", "buy"], "scenario": "s"}},
        "tasks": [{"name": "ctr", "label": "click", "type": "binary"}],
    })
    rows, p = _log(20000)
    rng = np.random.default_rng(5)
    champion = pd.DataFrame({"ctr": p})
    same = compare(pd.DataFrame({"ctr": p + rng.normal(0, 1e-6, len(p))}), champion, rows, cfg)["ctr"]
    lo, hi = same["gain_interval"]
    assert abs(same["gain"]) < 1e-3 and lo <= 0 <= hi
    worse = compare(pd.DataFrame({"ctr": p + rng.normal(0, 0.3, len(p))}), champion, rows, cfg)["ctr"]
    assert worse["gain"] < -0.02 and worse["gain_interval"][1] < 0
    assert set(worse["slices"]["s"]) == {"a", "b", "c"}
    assert all(v["gain"] < 0 for v in worse["slices"]["s"].values())


def test_compare_pairs_only_the_tasks_both_models_have():
    """A champion from a run with another task list (say the form chose fewer tasks) is compared on
    the tasks it has; the candidate's others are judged on their floors (tests/code/test_policy.py)."""
    from mtl.evaluation.compare import compare

    cfg = parse_config({
        "data": {"schema": {"categorical": ["u", "s"], "labels": ["click", "buy"], "scenario": "s"}},
        "tasks": [{"name": "ctr", "label": "click", "type": "binary"}, {"name": "cvr", "label": "buy", "type": "binary"}],
    })
    rows, p = _log(5000)
    out = compare(pd.DataFrame({"ctr": p, "cvr": p}), pd.DataFrame({"ctr": p}), rows, cfg)
    assert set(out) == {"ctr"}
