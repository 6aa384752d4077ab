"""`mtl init --from`: each column's role and the reason (mtl/data/ingest/infer.py), and the params
written for it (mtl/scaffold.py): complete for DVC, valid, naming only the user's columns."""

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl.config import parse_config
from mtl.data.ingest.infer import InferenceError, infer
from mtl.scaffold import describe, init
from mtl.stagelist import missing_params
from tests.conftest import REPO, SHARED_SAMPLES


def _log(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Another shop's log: its own names, ids as text, a timestamp, a funnel, a regression label
    that exists only on clicks, a title, a history, an event id and a constant."""
    rng = np.random.default_rng(seed)
    click = rng.random(n) < 0.3
    order = click & (rng.random(n) < 0.2)
    items = rng.integers(0, 300, n)
    return pd.DataFrame({
        "event_uuid": [f"e{i:07d}" for i in range(n)],
        "visitor": [f"v{v}" for v in rng.integers(0, 400, n)],
        "sku_id": items,
        "surface": rng.choice(["app", "web", "mini"], n),
        "hour": rng.integers(0, 24, n),
        "amount": np.round(rng.lognormal(3, 1.2, n), 2),
        "rank_score": rng.normal(0, 1, n),
        "event_time": pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
        "clicked": click.astype(int),
        "ordered": order.astype(int),
        "seconds_on_page": np.where(click, rng.gamma(2, 20, n), np.nan),
        "title": [f"blue cotton shirt model {i % 2000} for summer" for i in range(n)],
        "recent_skus": [list(rng.integers(0, 300, 5)) for _ in range(n)],
        "tenant": "shop-1",
    })


def test_each_column_gets_its_role_and_a_reason():
    cols = {c.name: c for c in infer(_log(), labels=["clicked", "ordered", "seconds_on_page"])}
    roles = {name: c.role for name, c in cols.items()}
    assert roles == {"event_uuid": "ignored", "visitor": "categorical", "sku_id": "categorical",
                     "surface": "categorical", "hour": "categorical", "amount": "numeric", "rank_score": "numeric",
                     "event_time": "time", "clicked": "label", "ordered": "label", "seconds_on_page": "label",
                     "title": "text", "recent_skus": "sequence", "tenant": "ignored"}
    assert cols["seconds_on_page"].extra == {"type": "regression"} and cols["clicked"].extra == {"type": "binary"}
    assert cols["recent_skus"].extra == {"vocabulary": "sku_id"} and cols["amount"].extra == {"log": True}
    assert "unique to every row" in cols["event_uuid"].reason and all(c.reason for c in cols.values())


def test_ids_encoded_in_order_of_appearance_are_categories_and_counters_stay_numbers():
    """Ali-CCP names its fields by number (205 item, 207 shop, 216 brand...) and encodes them in
    order of first appearance, 0 meaning unknown: ids that no name gives away. A position in a
    session also first appears in order, but falls in frequency: a number."""
    sample = pd.read_csv(SHARED_SAMPLES / "ali_ccp_train_sample.csv")
    roles = {c.name: (c.role, c.reason) for c in infer(sample)}
    for field in ("205", "207", "210", "216"):
        assert sample[field].nunique() > 50  # too many values for the small-integer rule
        assert roles[field][0] == "categorical" and "first appearance" in roles[field][1], (field, roles[field])
    assert roles["D508"][0] == "numeric"  # its dense features stay numbers

    rng = np.random.default_rng(0)
    n = 5000
    log = pd.DataFrame({"clicked": rng.integers(0, 2, n),
                        # 1, 2, ... ever rarer, sorted: each value first appears after the one before
                        "position": np.sort(np.minimum(rng.geometric(0.05, n), 80)),
                        "shop": pd.factorize(rng.integers(0, 10_000, n))[0] + 1})
    values = log["position"].nunique()
    assert values > 50 and (pd.unique(log["position"]) == np.arange(1, values + 1)).all()
    got = {c.name: c.role for c in infer(log)}
    assert got["shop"] == "categorical" and got["position"] == "numeric"


def test_zero_one_columns_are_labels_unless_labels_are_named():
    log = _log().drop(columns=["seconds_on_page"])
    guessed = {c.name: c.role for c in infer(log)}
    assert guessed["clicked"] == guessed["ordered"] == "label"
    named = {c.name: c.role for c in infer(log, labels=["ordered"])}
    assert named["ordered"] == "label" and named["clicked"] == "categorical"  # a 0/1 feature then
    with pytest.raises(InferenceError, match="--labels"):
        infer(log.drop(columns=["clicked", "ordered"]))  # nothing to take for a label: asked, not guessed
    with pytest.raises(InferenceError, match="does not have"):
        infer(log, labels=["bought"])
    with pytest.raises(InferenceError, match="not numbers"):
        infer(log, labels=["surface"])


def test_the_params_written_are_complete_valid_and_name_only_the_users_columns(tmp_path):
    data = tmp_path / "shop.parquet"
    _log().drop(columns=["title"]).to_parquet(data)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    backup, columns, params = init(data, tmp_path, tmp_path / "params.yaml",
                                   ["clicked", "ordered", "seconds_on_page"])
    assert backup == tmp_path / "params.yaml.bak" and backup.read_text() == (REPO / "params.yaml").read_text()
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert missing_params(raw) == [] and "synthetic" not in raw["data"]
    cfg = parse_config(raw)
    assert cfg.data.source == "files" and cfg.data.path == "shop.parquet"
    assert cfg.data.schema.time == "event_time" and cfg.data.schema.scenario == "surface"
    assert dict(cfg.data.schema.sequence) == {"recent_skus": "sku_id"}
    tasks = {t.name: t for t in cfg.tasks}
    assert tasks["ordered"].implies == "clicked"  # a purchase needs a click
    assert tasks["seconds_on_page"].type == "regression" and tasks["seconds_on_page"].condition.column == "clicked"
    assert cfg.evaluation.gauc_by is None and "hour" not in cfg.evaluation.slices  # 24 values: too many
    assert set(cfg.gate.tasks) == set(tasks) and set(cfg.gate.slices) == {"surface"}
    assert cfg.validation.keys == () and cfg.validation.expectations is None
    assert set(cfg.validation.columns) <= set(cfg.data.schema.numeric)
    assert cfg.scoring.keep == ("sku_id",) and cfg.features.columns["amount"]["log"]
    named = set(cfg.data.schema.required_columns())
    assert set(cfg.data.schema.categorical) | set(cfg.data.schema.numeric) <= named
    text = describe(columns, params, tmp_path / "params.yaml", backup)
    assert "ordered: binary, only where clicked is 1" in text and "params.yaml.bak" in text
