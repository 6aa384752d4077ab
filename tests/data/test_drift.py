"""Drift measures against a champion's training statistics: the arithmetic and the levels."""

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl.config import parse_config
from mtl.data import features
from mtl.data.contracts import drift
from mtl.data.ingest import synthetic

from tests.data.test_contract import ROOT, SMALL


@pytest.fixture(scope="module")
def cfg():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["synthetic"].update(SMALL)
    return parse_config(raw)


@pytest.fixture(scope="module")
def log(cfg):
    return synthetic.generate(cfg.data.synthetic)


@pytest.fixture(scope="module")
def reference(cfg, log):
    t = features.fit(log, cfg)
    return {"name": "champion", "stats": t.stats, "categorical": t.categorical}


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    p = np.array([0.25, 0.25, 0.5])
    assert drift.psi(p, p) == 0.0
    small, large = drift.psi(p, np.array([0.3, 0.2, 0.5])), drift.psi(p, np.array([0.5, 0.1, 0.4]))
    assert 0 < small < large
    # by hand: (0.3-0.25) ln(0.3/0.25) + (0.2-0.25) ln(0.2/0.25)
    assert small == pytest.approx(0.05 * np.log(1.2) - 0.05 * np.log(0.8))


def test_the_training_data_itself_does_not_drift(cfg, log, reference):
    measures = drift.compare(log, reference, cfg)
    assert measures and all(m.level == "ok" for m in measures)
    assert max(m.value for m in measures if m.check == "psi") < 0.01


def test_numeric_shares_cover_every_row_including_missing(log, reference):
    values = log["price"].copy()
    values.iloc[:100] = np.nan
    ref, batch = drift.numeric_shares(values, reference["stats"]["numeric"]["price"]["histogram"])
    assert ref.sum() == pytest.approx(1.0) and batch.sum() == pytest.approx(1.0)
    assert batch[-1] == pytest.approx(100 / len(values))


def test_a_small_batch_within_sampling_noise_raises_no_label_shift(cfg, log, reference):
    """200 rows of the purchase task: its rate moves a lot by chance alone, which z < 4 absorbs."""
    measures = drift.label_shift(log.sample(200, random_state=3), reference, cfg)
    assert all(m.level == "ok" for m in measures)


def test_levels_come_from_params(cfg, log, reference):
    strict = cfg.model_copy(update={"validation": cfg.validation.model_copy(update={
        "drift": cfg.validation.drift.model_copy(update={"psi": cfg.validation.drift.psi.model_copy(
            update={"warn": 0.0, "fail": 0.0})})})})
    batch = log.assign(price=log["price"] * 1.1)
    (price,) = [m for m in drift.feature_drift(batch, reference, strict) if m.column == "price"]
    assert price.level == "error"
    (price,) = [m for m in drift.feature_drift(batch, reference, cfg) if m.column == "price"]
    assert price.level == "ok"


def test_a_column_can_opt_out_of_drift(cfg, log, reference):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["synthetic"].update(SMALL)
    raw["validation"]["columns"]["price"] = {"min": 0, "drift": False}
    quiet = parse_config(raw)
    batch = log.assign(price=log["price"] * 3)
    assert "price" not in {m.column for m in drift.feature_drift(batch, reference, quiet)}
    assert "price" in {m.column for m in drift.feature_drift(batch, reference, cfg) if m.level == "error"}


def test_string_categories_compare_as_text(cfg, log, reference):
    batch = log.assign(device=log["device"].astype("category"))
    (device,) = [m for m in drift.feature_drift(batch, reference, cfg) if m.column == "device" and m.check == "psi"]
    assert device.value < 0.001
    (new,) = [m for m in drift.feature_drift(batch, reference, cfg)
              if m.column == "device" and m.check == "new_category_rate"]
    assert new.value == 0.0
