"""The fitted transform: fitted on train only, same output for training and serving, safe to load."""

import json

import numpy as np
import pandas as pd
import pytest

from mtl.config import parse_config
from mtl.data import features

RAW = pd.DataFrame({
    "ts": pd.date_range("2026-01-01", periods=10, freq="D"),
    "user": [1, 2, 3, 1, 2, 3, 4, 5, 6, 7],
    "surface": ["a", "b", "a", "b", "a", "b", "c", "c", "d", "d"],
    "price": [1.0, 2.0, 3.0, None, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
    "click": [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
    "dwell": [10.0, None, 30.0, None, 50.0, None, 70.0, None, 90.0, None],
})


def cfg(time="ts"):
    return parse_config({
        "data": {"schema": {"categorical": ["user", "surface"], "numeric": ["price"], "labels": ["click", "dwell"],
                            "time": time},
                 "split": {"validation": 0.2, "test": 0.2}},
        "tasks": [{"name": "ctr", "label": "click", "type": "binary"},
                  {"name": "dwell", "label": "dwell", "type": "regression",
                   "condition": {"column": "click", "equals": 1}}],
    })


def test_time_split_is_ordered_and_disjoint():
    idx, info = features.split_rows(RAW, cfg())
    assert info["method"] == "time"
    assert set(idx["train"]).isdisjoint(idx["validation"]) and set(idx["train"]).isdisjoint(idx["test"])
    assert len(idx["train"]) + len(idx["validation"]) + len(idx["test"]) == len(RAW)
    assert RAW.ts[idx["train"]].max() < RAW.ts[idx["validation"]].min()
    assert RAW.ts[idx["validation"]].max() < RAW.ts[idx["test"]].min()


def test_random_split_is_seeded_and_disjoint():
    a, info = features.split_rows(RAW, cfg(time=None))
    b, _ = features.split_rows(RAW, cfg(time=None))
    assert info["method"] == "random"
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(np.concatenate(list(a.values()))) == list(range(len(RAW)))


def test_vocabulary_comes_from_training_rows_only():
    train = RAW.iloc[:6]
    t = features.fit(train, cfg())
    assert t.categorical["user"]["values"] == [1, 2, 3]
    assert t.categorical["surface"]["values"] == ["a", "b"]
    arrays = features.apply(RAW.iloc[6:], t)
    assert (arrays.cat == features.OOV).all()  # users 4-7 and surfaces c/d were never seen


def test_missing_numeric_is_imputed_with_training_mean():
    t = features.fit(RAW.iloc[:6], cfg())
    mean = RAW.price.iloc[:6].mean()
    assert t.numeric["price"]["mean"] == pytest.approx(mean)
    arrays = features.apply(RAW.iloc[:6], t)
    assert arrays.num[3, 0] == pytest.approx(0.0)  # the missing price sits exactly at the mean


def test_condition_masks_and_target_scaling():
    t = features.fit(RAW, cfg())
    arrays = features.apply(RAW, t)
    assert arrays.mask[:, 0].all()
    assert (arrays.mask[:, 1] == (RAW.click == 1)).all()
    y = arrays.labels[arrays.mask[:, 1], 1]
    assert y.mean() == pytest.approx(0.0, abs=1e-6)


def test_serving_path_gives_identical_inputs():
    """Training arrays and arrays built from the same raw rows at serving time are identical."""
    t = features.fit(RAW.iloc[:6], cfg())
    training = features.apply(RAW, t)
    served_rows = RAW[["surface", "price", "user"]].copy()  # other column order, no labels
    served = features.apply(served_rows, t, with_labels=False)
    assert np.array_equal(training.cat, served.cat) and np.array_equal(training.num, served.num)


def test_ids_arriving_as_strings_find_their_slot():
    t = features.fit(RAW, cfg())
    as_str = RAW.assign(user=RAW.user.astype(str))
    assert np.array_equal(features.apply(as_str, t).cat, features.apply(RAW, t).cat)


def test_save_load_roundtrip_and_corruption(tmp_path):
    t = features.fit(RAW, cfg(), {"method": "time"})
    path = tmp_path / "transform.json"
    t.save(path)
    assert features.Transform.load(path).fingerprint() == t.fingerprint()
    payload = json.loads(path.read_text())
    payload["numeric"]["price"]["mean"] += 1
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="checksum mismatch"):
        features.Transform.load(path)


def test_empty_split_is_a_clear_error():
    with pytest.raises(ValueError, match="split is empty"):
        features.split_rows(RAW.iloc[:2], cfg(time=None))
