"""The fitted transform: fitted on train only, per-column transforms from params, safe to load."""

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


def cfg(time="ts", **feature_overrides):
    return parse_config({
        "data": {"schema": {"categorical": ["user", "surface"], "numeric": ["price"], "labels": ["click", "dwell"],
                            "time": time, "scenario": "surface"},
                 "split": {"validation": 0.2, "test": 0.2}},
        "features": feature_overrides,
        "tasks": [{"name": "ctr", "label": "click", "type": "binary"},
                  {"name": "dwell", "label": "dwell", "type": "regression",
                   "condition": {"column": "click", "equals": 1}}],
    })


def test_vocabulary_comes_from_training_rows_only():
    t = features.fit(RAW.iloc[:6], cfg())
    assert sorted(t.categorical["user"]["values"]) == [1, 2, 3]
    assert sorted(t.categorical["surface"]["values"]) == ["a", "b"]
    arrays = features.apply(RAW.iloc[6:], t)
    assert (arrays.cat == features.OOV).all()  # users 4-7 and surfaces c/d were never seen


def test_vocabulary_is_ordered_by_frequency_and_honours_min_frequency_and_max_size():
    t = features.fit(RAW, cfg(columns={"user": {"min_frequency": 2}, "surface": {"max_size": 1}}))
    assert t.categorical["user"]["values"] == [1, 2, 3]  # users 4-7 appear once
    assert t.categorical["surface"]["values"] == ["a"]  # a, b, c, d: a ties b on count, wins on value
    arrays = features.apply(RAW, t)
    assert arrays.cat[6:, 0].tolist() == [features.OOV] * 4
    assert t.stats["categorical"]["user"]["coverage"] == pytest.approx(6 / 10)


def test_hash_buckets_give_unseen_ids_stable_slots_beyond_the_vocabulary():
    t = features.fit(RAW.iloc[:6], cfg(columns={"user": {"hash_buckets": 16}}))
    vocab = len(t.categorical["user"]["values"])
    assert t.cardinalities[0] == vocab + 1 + 16
    unseen = pd.DataFrame({"user": [4, 5, 4, None], "surface": ["a"] * 4, "price": [1.0] * 4})
    codes = features.apply(unseen, t, with_labels=False).cat[:, 0]
    assert (codes[:3] > vocab).all() and (codes[:3] <= vocab + 16).all()
    assert codes[0] == codes[2]  # the same id always lands in the same bucket
    assert codes[3] == features.OOV  # a null is not an id: it stays out of vocabulary
    again = features.Transform(**{k: getattr(t, k) for k in ("categorical", "numeric", "targets", "tasks")})
    assert np.array_equal(features.apply(unseen, again, with_labels=False).cat, features.apply(unseen, t, with_labels=False).cat)


def test_missing_numeric_is_imputed_with_training_mean_and_flagged():
    t = features.fit(RAW.iloc[:6], cfg(numeric={"missing_indicator": True}))
    mean = RAW.price.iloc[:6].mean()
    assert t.numeric["price"]["impute"] == pytest.approx(mean)
    assert t.num_inputs == ["price", "price__missing"]
    arrays = features.apply(RAW.iloc[:6], t)
    assert arrays.num[3, 0] == pytest.approx(0.0)  # the missing price sits exactly at the mean
    assert arrays.num[:, 1].tolist() == [0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("impute, expected", [("median", 3.0), ("zero", 0.0), (42.5, 42.5)])
def test_imputation_choices_are_recorded(impute, expected):
    t = features.fit(RAW.iloc[:6], cfg(numeric={"impute": impute}))
    assert t.numeric["price"]["impute"] == pytest.approx(expected)


def test_clip_log_and_standardise_in_order():
    t = features.fit(RAW, cfg(columns={"price": {"clip": [2, 8], "log": True}}))
    observed = RAW.price.dropna().clip(2, 8)
    shaped = np.log1p(observed)
    assert t.numeric["price"]["mean"] == pytest.approx(shaped.mean())
    assert t.numeric["price"]["std"] == pytest.approx(shaped.std())
    arrays = features.apply(pd.DataFrame({"user": [1], "surface": ["a"], "price": [1000.0]}), t, with_labels=False)
    assert arrays.num[0, 0] == pytest.approx((np.log1p(8) - shaped.mean()) / shaped.std(), rel=1e-5)


def test_bucketised_numeric_becomes_a_categorical_input():
    t = features.fit(RAW, cfg(columns={"price": {"scale": "bucketize", "buckets": 3}}))
    assert t.cat_inputs == ["user", "surface", "price__bucket"] and t.num_inputs == []
    assert len(t.numeric["price"]["boundaries"]) == 2
    arrays = features.apply(RAW, t)
    buckets = arrays.cat[:, 2]
    assert buckets.min() >= 1 and buckets.max() < t.cardinalities[2]
    prices = RAW.price.fillna(t.numeric["price"]["impute"]).to_numpy()
    assert (np.diff(buckets[np.argsort(prices)]) >= 0).all()  # monotone in the value


def test_condition_masks_and_target_scaling():
    t = features.fit(RAW, cfg())
    arrays = features.apply(RAW, t)
    assert arrays.mask[:, 0].all()
    assert (arrays.mask[:, 1] == (RAW.click == 1)).all()
    y = arrays.labels[arrays.mask[:, 1], 1]
    assert y.mean() == pytest.approx(0.0, abs=1e-6)


def test_statistics_record_counts_quantiles_and_label_rates_per_scenario():
    t = features.fit(RAW, cfg())
    num = t.stats["numeric"]["price"]
    assert num["count"] == 9 and num["missing"] == 1 and num["quantiles"]["0.5"] == pytest.approx(6.0)
    ctr = t.stats["labels"]["ctr"]
    assert ctr["__all__"] == {"rows": 10, "mean": 0.5, "std": 0.5}
    assert ctr["a"] == {"rows": 3, "mean": 1.0, "std": 0.0}  # surface a: rows 0, 2, 4, all clicked
    assert t.stats["labels"]["dwell"]["__all__"]["rows"] == 5
    # the drift reference: decile bins of price (9 values, 1 missing) whose shares add up to 1
    hist = num["histogram"]
    assert hist["missing"] == pytest.approx(0.1)
    assert sum(hist["fractions"]) + hist["missing"] == pytest.approx(1.0)
    assert hist["edges"] == sorted(set(hist["edges"])) and len(hist["fractions"]) == len(hist["edges"]) + 1


def test_fit_is_independent_of_chunking():
    whole = features.fit(RAW, cfg())
    fitter = features.Fitter(cfg())
    for start in range(0, len(RAW), 3):
        part = RAW.iloc[start : start + 3]
        fitter.update(part, np.arange(start, start + len(part)))
    assert fitter.finish({}).fingerprint() == whole.fingerprint()


def test_serving_path_gives_identical_inputs():
    """Training arrays and arrays built from the same raw rows at serving time are identical."""
    t = features.fit(RAW.iloc[:6], cfg())
    training = features.apply(RAW, t)
    served_rows = RAW[["surface", "price", "user"]].copy()  # other column order, no labels
    served = features.apply(served_rows, t, with_labels=False)
    assert np.array_equal(training.cat, served.cat) and np.array_equal(training.num, served.num)


def test_ids_arriving_as_strings_or_dictionary_encoded_find_their_slot():
    t = features.fit(RAW, cfg())
    as_str = RAW.assign(user=RAW.user.astype(str))
    as_cat = RAW.assign(surface=RAW.surface.astype("category"))
    expected = features.apply(RAW, t).cat
    assert np.array_equal(features.apply(as_str, t).cat, expected)
    assert np.array_equal(features.apply(as_cat, t).cat, expected)


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


def test_feature_overrides_are_validated_by_kind():
    from mtl.config import ConfigError

    with pytest.raises(ConfigError, match="features.columns.user"):
        cfg(columns={"user": {"log": True}})  # a numeric option on a categorical column
    with pytest.raises(ConfigError, match="features.columns.nope"):
        cfg(columns={"nope": {"min_frequency": 2}})
