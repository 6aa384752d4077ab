"""The leakage check: near-copies of a label are named; honest features, even memorisable ids, are not."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mtl.config import parse_config
from mtl.data.contracts.leakage import auc, find_label_leaks

CFG = {
    "data": {"source": "synthetic", "schema": {"categorical": ["user", "surface"], "numeric": ["price"],
                                               "labels": ["click", "purchase", "dwell"]}},
    "tasks": [{"name": "click", "label": "click", "type": "binary"},
              {"name": "purchase", "label": "purchase", "type": "binary", "implies": "click"},
              {"name": "dwell", "label": "dwell", "type": "regression", "condition": {"column": "click", "equals": 1}}],
}


def cfg(categorical=(), numeric=()):
    raw = {**CFG, "data": {**CFG["data"], "schema": {**CFG["data"]["schema"]}}}
    raw["data"]["schema"]["categorical"] = ["user", "surface", *categorical]
    raw["data"]["schema"]["numeric"] = ["price", *numeric]
    return parse_config(raw)


def log(n=20_000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = rng.integers(1, 5_000, n)  # an id with ~4 rows per value: memorisable, not a leak
    surface = rng.integers(1, 4, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=5_000)[user % 5_000] + 0.3 * surface - 2)))
    click = (rng.random(n) < p).astype(np.int8)
    purchase = (click * (rng.random(n) < 0.2)).astype(np.int8)
    dwell = np.where(click == 1, rng.normal(30, 5, n), np.nan)
    return pd.DataFrame({"user": user, "surface": surface, "price": rng.lognormal(size=n),
                         "click": click, "purchase": purchase, "dwell": dwell})


def test_the_rank_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    y = (rng.random(3_000) < 0.2).astype(float)
    x = rng.integers(0, 30, 3_000) + y * rng.random(3_000)
    assert auc(y, x) == pytest.approx(roc_auc_score(y, x), abs=1e-12)
    assert auc(np.zeros(5), np.arange(5.0)) is None


def test_honest_features_pass():
    assert find_label_leaks(log(), cfg()) == []


def test_a_label_copied_into_a_numeric_feature_is_caught():
    df = log()
    df["clicked_again"] = df["click"] + np.random.default_rng(2).normal(0, 0.01, len(df))
    leaks = find_label_leaks(df, cfg(numeric=["clicked_again"]))
    assert ("clicked_again", "click") in {(lk.feature, lk.task) for lk in leaks}


def test_an_order_id_only_purchases_have_is_caught_as_a_categorical_leak():
    df = log()
    df["order_id"] = np.where(df["purchase"] == 1, np.arange(len(df)) + 10, 0)  # unique per purchase
    leaks = find_label_leaks(df, cfg(categorical=["order_id"]))
    assert {(lk.feature, lk.task) for lk in leaks} >= {("order_id", "purchase")}
    assert all(lk.feature == "order_id" for lk in leaks)


def test_a_value_present_only_on_purchases_is_caught_through_its_missingness():
    df = log()
    df["order_value"] = np.where(df["purchase"] == 1, df["price"], np.nan)
    leaks = find_label_leaks(df, cfg(numeric=["order_value"]))
    assert any(lk.feature == "order_value" and lk.task == "purchase" and lk.score > 0.99 for lk in leaks)


def test_a_regression_label_copy_is_caught_by_correlation_on_its_rows():
    df = log()
    df["dwell_copy"] = 2 * df["dwell"].fillna(0) + 1
    leaks = find_label_leaks(df, cfg(numeric=["dwell_copy"]))
    assert any(lk.feature == "dwell_copy" and lk.task == "dwell" and lk.metric == "|correlation|" for lk in leaks)


def test_the_message_names_feature_task_and_fix():
    df = log()
    df["click_copy"] = df["click"]
    (leak, *_) = find_label_leaks(df, cfg(numeric=["click_copy"]))
    text = leak.describe(0.99)
    assert "'click_copy'" in text and "'click'" in text and "data.schema" in text and "leak_threshold" in text


def test_only_a_sample_is_scored():
    df = log(n=50_000)
    df["click_copy"] = df["click"]
    leaks = find_label_leaks(df, cfg(numeric=["click_copy"]), max_rows=2_000)
    assert [(lk.feature, lk.task) for lk in leaks if lk.task == "click"] == [("click_copy", "click")]
