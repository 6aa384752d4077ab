"""Streaming preprocessing: splits, shards, and the train/serve consistency of the transform."""

import json

import numpy as np
import pandas as pd
import pytest

from mtl.config import parse_config
from mtl.data import features
from mtl.data.features import splits
from mtl.data.features.preprocess import TEST_RAW, TRANSFORM, build
from mtl.data.features.shards import open_split

DAYS = 10
PER_DAY = 200


def raw_log(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = DAYS * PER_DAY
    day = np.repeat(np.arange(DAYS), PER_DAY)
    items = rng.integers(0, 50, n) + 10 * day  # new items appear every day: the test has unseen ids
    price = rng.lognormal(3, 1, n)
    price[rng.random(n) < 0.05] = np.nan  # missing numerics in every split
    click = (rng.random(n) < 0.3).astype(np.int8)
    return pd.DataFrame({
        "ts": pd.Timestamp("2026-03-01") + pd.to_timedelta(day * 86400 + rng.integers(0, 86400, n), unit="s"),
        "item": items,
        "surface": rng.choice(["feed", "search", "cart"], n),
        "price": price,
        "click": click,
        "buy": (click * (rng.random(n) < 0.2)).astype(np.int8),
    })


def cfg(**over):
    raw = {
        "data": {"schema": {"categorical": ["item", "surface"], "numeric": ["price"], "labels": ["click", "buy"],
                            "time": "ts", "scenario": "surface"},
                 "split": {"validation_days": 2, "test_days": 1}},
        "features": {"chunk_rows": 300, "shard_rows": 500, "sample_rows": 400,
                     "columns": {"item": {"hash_buckets": 8}, "price": {"log": True, "missing_indicator": True}}},
        "tasks": [{"name": "ctr", "label": "click", "type": "binary"},
                  {"name": "ctcvr", "label": "buy", "type": "binary", "implies": "click"}],
    }
    for dotted, value in over.items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return parse_config(raw)


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / "raw.parquet"
    raw_log().to_parquet(path, index=False)
    return path


def test_time_split_is_by_whole_days_and_recorded(raw_file, tmp_path):
    summary = build(raw_file, cfg(), tmp_path / "f")
    assert summary["split"]["method"] == "time"
    assert summary["rows"] == {"train": 7 * PER_DAY, "validation": 2 * PER_DAY, "test": PER_DAY}
    assert summary["split"]["validation"][0] == "2026-03-08 00:00:00"
    assert summary["split"]["test"][0] == "2026-03-10 00:00:00"
    test = pd.read_parquet(tmp_path / "f" / TEST_RAW)
    assert (test.ts >= pd.Timestamp("2026-03-10")).all() and len(test) == PER_DAY


def test_random_split_is_seeded_disjoint_and_independent_of_chunking(tmp_path):
    rows = np.arange(100_000)
    a = splits.uniform(rows, 7)
    assert np.array_equal(a, splits.uniform(rows, 7)) and not np.array_equal(a, splits.uniform(rows, 8))
    assert abs(a.mean() - 0.5) < 0.01 and a.min() >= 0 and a.max() < 1
    raw = raw_log()
    c = cfg(**{"data.split.method": "random", "data.split.validation": 0.2, "data.split.test": 0.1})
    path = tmp_path / "raw.parquet"
    raw.to_parquet(path, index=False)
    plan = splits.plan(path, c.data)
    whole = plan.assign(raw, 0)
    chunked = np.concatenate([plan.assign(raw.iloc[s : s + 77], s) for s in range(0, len(raw), 77)])
    assert np.array_equal(whole, chunked)
    share = np.bincount(whole, minlength=3) / len(raw)
    assert share == pytest.approx([0.7, 0.2, 0.1], abs=0.03)


def test_split_column_is_honoured_and_validation_carved_when_absent(tmp_path):
    raw = raw_log().assign(split=np.where(np.arange(DAYS * PER_DAY) < 1500, "train", "test"))
    path = tmp_path / "raw.parquet"
    raw.to_parquet(path, index=False)
    summary = build(path, cfg(**{"data.split.validation": 0.2}), tmp_path / "f")
    assert summary["split"]["method"] == "column" and summary["split"]["validation_carved_from_train"]
    assert summary["rows"]["test"] == 500
    assert summary["rows"]["validation"] == pytest.approx(300, abs=60)
    bad = raw.assign(split="holdout")
    bad.to_parquet(path, index=False)
    with pytest.raises(splits.SplitError, match="holdout"):
        build(path, cfg(), tmp_path / "g")


def test_too_few_days_is_a_clear_error(tmp_path):
    raw = raw_log()
    path = tmp_path / "raw.parquet"
    raw[raw.ts < pd.Timestamp("2026-03-03")].to_parquet(path, index=False)
    with pytest.raises(splits.SplitError, match="spans 2 day"):
        build(path, cfg(), tmp_path / "f")


def test_output_does_not_depend_on_chunk_size(raw_file, tmp_path):
    """Streaming changes nothing but float summation order (the hash is reproducible per chunk size)."""
    build(raw_file, cfg(), tmp_path / "a")
    build(raw_file, cfg(**{"features.chunk_rows": 10_000, "features.shard_rows": 10_000}), tmp_path / "b")
    ta, tb = (features.Transform.load(tmp_path / d / TRANSFORM) for d in "ab")
    assert ta.categorical == tb.categorical and ta.split == tb.split
    assert ta.numeric["price"]["mean"] == pytest.approx(tb.numeric["price"]["mean"], rel=1e-12)
    assert ta.stats["numeric"]["price"]["quantiles"] == tb.stats["numeric"]["price"]["quantiles"]
    for split in splits.SPLITS:
        x, y = open_split(tmp_path / "a" / split).all(), open_split(tmp_path / "b" / split).all()
        assert all(np.array_equal(getattr(x, f), getattr(y, f)) for f in ("cat", "labels", "mask"))
        np.testing.assert_allclose(x.num, y.num, rtol=1e-6)
    assert open_split(tmp_path / "a" / "train").n_shards == 3  # 1400 rows in shards of 500


def test_rebuild_is_byte_identical(raw_file, tmp_path):
    build(raw_file, cfg(), tmp_path / "f")
    first = {p.relative_to(tmp_path / "f"): p.read_bytes() for p in (tmp_path / "f").rglob("*") if p.is_file()}
    build(raw_file, cfg(), tmp_path / "f")
    second = {p.relative_to(tmp_path / "f"): p.read_bytes() for p in (tmp_path / "f").rglob("*") if p.is_file()}
    assert first == second


def test_training_and_serving_paths_give_identical_tensors(raw_file, tmp_path):
    """The shards the trainer reads equal what the served model computes from the same raw rows,
    including ids never seen in training and missing numerics."""
    import torch

    from mtl.scoring import Scorer
    from mtl.training.loop import _tensors

    build(raw_file, cfg(), tmp_path / "f")
    transform = features.Transform.load(tmp_path / "f" / TRANSFORM)
    test_rows = pd.read_parquet(tmp_path / "f" / TEST_RAW)
    vocab = set(transform.categorical["item"]["values"])
    assert (~test_rows["item"].isin(vocab)).sum() > 50  # unseen ids are really there
    assert test_rows["price"].isna().sum() > 0  # and missing prices
    trained = open_split(tmp_path / "f" / "test").all()

    # The serving path: what the registered pyfunc does with a request (plain pandas, strings as object).
    request = test_rows[Scorer(transform, None).input_columns].astype({"surface": object})
    served = features.apply(request, features.Transform.load(tmp_path / "f" / TRANSFORM), with_labels=False)
    t_cat, t_num, *_ = _tensors(trained, torch.device("cpu"))
    s_cat, s_num, *_ = _tensors(served, torch.device("cpu"))
    assert torch.equal(t_cat, s_cat) and torch.equal(t_num, s_num)
    unseen = ~test_rows["item"].isin(vocab).to_numpy()
    assert (trained.cat[unseen, 0] > len(vocab)).all()  # hashed buckets, not the vocabulary
    missing = test_rows["price"].isna().to_numpy()
    assert (trained.num[missing, 1] == 1).all() and (trained.num[~missing, 1] == 0).all()


def test_shards_and_transform_are_safe_formats(raw_file, tmp_path):
    build(raw_file, cfg(), tmp_path / "f")
    payload = json.loads((tmp_path / "f" / TRANSFORM).read_text())
    assert payload["sha256"] == features.Transform.load(tmp_path / "f" / TRANSFORM).fingerprint()
    part = open_split(tmp_path / "f" / "train")
    arrays = part.load(0)
    assert isinstance(arrays.cat, np.memmap)  # memory-mapped, not read into RAM
    for f in (tmp_path / "f" / "train").rglob("*.npy"):
        np.load(f, allow_pickle=False)
