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
