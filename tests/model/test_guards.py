"""The label-leak guard: near-copies of a label stop training; honest features do not."""

import numpy as np
import pytest

from mtl.data.features import Arrays
from mtl.training.guards import LabelLeak, check_label_leaks, find_label_leaks

TASKS = [{"name": "click", "type": "binary"}, {"name": "purchase", "type": "binary"},
         {"name": "dwell", "type": "regression"}]


def arrays(n=20_000, seed=0, extra_cat=None, extra_num=None):
    rng = np.random.default_rng(seed)
    user = rng.integers(1, 5_000, n)  # an id with ~4 rows per value: memorisable, not a leak
    surface = rng.integers(1, 4, n)
    price = rng.lognormal(size=n)
    p = 1 / (1 + np.exp(-(rng.normal(size=5_000)[user % 5_000] + 0.3 * surface - 2)))
    click = (rng.random(n) < p).astype(np.float32)
    purchase = click * (rng.random(n) < 0.2)
    dwell = np.where(click == 1, rng.normal(30, 5, n), 0)
    cat = [user, surface] + ([extra_cat(click, purchase, rng)] if extra_cat else [])
    num = [price] + ([extra_num(click, purchase, dwell, rng)] if extra_num else [])
    labels = np.stack([click, purchase, dwell], 1).astype(np.float32)
    mask = np.stack([np.ones(n, bool), np.ones(n, bool), click == 1], 1)
    return Arrays(np.stack(cat, 1).astype(np.int32), np.stack(num, 1).astype(np.float32), labels, mask)


def test_honest_features_pass():
    assert find_label_leaks(arrays(), ["user", "surface"], ["price"], TASKS) == []


def test_a_label_copied_into_a_numeric_feature_is_caught():
    a = arrays(extra_num=lambda c, p, d, rng: c + rng.normal(0, 0.01, len(c)))
    leaks = find_label_leaks(a, ["user", "surface"], ["price", "clicked_again"], TASKS)
    assert ("clicked_again", "click") in {(lk.feature, lk.task) for lk in leaks}


def test_an_order_id_only_purchases_have_is_caught_as_a_categorical_leak():
    def order_id(c, p, rng):
        return np.where(p == 1, np.arange(len(p)) + 10, 0)  # unique per purchase, OOV otherwise

    a = arrays(extra_cat=order_id)
    leaks = find_label_leaks(a, ["user", "surface", "order_id"], ["price"], TASKS)
    assert {(lk.feature, lk.task) for lk in leaks} >= {("order_id", "purchase")}
    assert all(lk.feature == "order_id" for lk in leaks)


def test_a_regression_label_copy_is_caught_by_correlation():
    a = arrays(extra_num=lambda c, p, d, rng: 2 * d + 1)
    leaks = find_label_leaks(a, ["user", "surface"], ["price", "dwell_copy"], TASKS)
    assert any(lk.feature == "dwell_copy" and lk.task == "dwell" and lk.metric == "|correlation|" for lk in leaks)


def test_check_raises_with_feature_task_and_fix():
    a = arrays(extra_num=lambda c, p, d, rng: c)
    with pytest.raises(LabelLeak) as err:
        check_label_leaks(a, ["user", "surface"], ["price", "click_copy"], TASKS, 0.99)
    text = str(err.value)
    assert "'click_copy'" in text and "'click'" in text and "data.schema" in text and "leak_threshold" in text
