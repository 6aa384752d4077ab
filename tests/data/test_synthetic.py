"""The generated log behaves like a funnel with known ground truth."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mtl.config import SyntheticConfig
from mtl.data.ingest import synthetic

SMALL = dict(rows=40_000, users=2_000, items=1_000, categories=20, brands=50)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return synthetic.generate(SyntheticConfig(**SMALL))


def test_deterministic_by_seed():
    a = synthetic.generate(SyntheticConfig(**(SMALL | {"rows": 3000})))
    b = synthetic.generate(SyntheticConfig(**(SMALL | {"rows": 3000})))
    c = synthetic.generate(SyntheticConfig(**(SMALL | {"rows": 3000, "seed": 7})))
    pd.testing.assert_frame_equal(a, b)
    assert not a["click"].equals(c["click"]) or not a["user_id"].equals(c["user_id"])


def test_size_and_columns(log):
    assert len(log) == SMALL["rows"]
    for col in ("ts", "user_id", "item_id", "scenario", "price", "click", "add_to_cart", "purchase",
                "dwell_seconds", "p_click", "p_add_to_cart", "p_purchase"):
        assert col in log


def test_funnel_rules(log):
    assert ((log["add_to_cart"] == 1) & (log["click"] == 0)).sum() == 0
    assert ((log["purchase"] == 1) & (log["click"] == 0)).sum() == 0
    assert log.loc[log["click"] == 1, "dwell_seconds"].notna().all()
    assert log.loc[log["click"] == 0, "dwell_seconds"].isna().all()


def test_rates_are_realistic_and_ordered(log):
    ctr, cart, buy = log["click"].mean(), log["add_to_cart"].mean(), log["purchase"].mean()
    assert 0.02 < ctr < 0.12
    assert 0.0 < buy < cart < ctr


def test_truth_is_calibrated_and_informative(log):
    for label in ("click", "add_to_cart", "purchase"):
        p = log[f"p_{label}"]
        assert p.between(0, 1).all()
        # the true probabilities must match the empirical rate, and rank far better than chance
        assert abs(p.mean() - log[label].mean()) < 0.15 * log[label].mean() + 0.002
        assert roc_auc_score(log[label], p) > 0.75


def test_popularity_is_skewed(log):
    counts = log["item_id"].value_counts()
    top_share = counts.iloc[: len(counts) // 100].sum() / len(log)
    assert top_share > 0.05  # the top 1% of items get far more than 1% of impressions


def test_task_correlation_parameter_controls_label_relation():
    def relation(rho):
        df = synthetic.generate(SyntheticConfig(**(SMALL | {"rows": 60_000, "task_correlation": rho})))
        clicked = df[df["click"] == 1]
        return np.corrcoef(np.log(clicked["p_click"]), np.log(clicked["p_purchase"] / clicked["p_click"]))[0, 1]

    assert relation(1.0) > relation(0.0) + 0.1
