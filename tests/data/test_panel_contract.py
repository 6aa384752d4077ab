"""Data tests: a daily panel's contract (data.panel) names each way a panel breaks, through the
GX suite the validate stage runs; and the supply-chain preset validates its own generated panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mtl.config import apply_overrides, parse_config
from mtl.data.contracts.validation import validate_frame
from mtl.data.ingest import supply_chain

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"data.synthetic.items": 20, "data.synthetic.warehouses": 2, "data.synthetic.days": 170}


@pytest.fixture(scope="module")
def cfg():
    raw = yaml.safe_load((ROOT / "configs" / "supply_chain.yaml").read_text())
    return parse_config(apply_overrides(raw, SMALL))


@pytest.fixture(scope="module")
def panel(cfg) -> pd.DataFrame:
    return supply_chain.generate(cfg.data.synthetic)


def _failures(frame: pd.DataFrame, cfg) -> list[str]:
    report = validate_frame(frame, cfg)
    return [c.detail for c in report.checks if not c.success]


def test_the_generated_panel_meets_its_contract(panel, cfg):
    report = validate_frame(panel, cfg)
    assert report.success, [c.detail for c in report.checks if not c.success]
    kinds = " ".join(c.detail for c in report.checks)
    for promise in ("one row per series and day", "every series has every day", "'units_sold' is never negative",
                    "daily event 'stockout' is 0 or 1", "'units_sold' is never above 'stock_on_hand'"):
        assert promise in kinds


def _drop_day(frame):
    one = (frame["item_id"] == 3) & (frame["warehouse_id"] == 1)
    return frame.drop(frame.index[one][40])


def _repeat_day(frame):
    return pd.concat([frame, frame.iloc[[7]]], ignore_index=True)


def _negative(frame):
    frame = frame.copy()
    frame.loc[frame.index[:5], "units_sold"] = -1
    return frame


def _oversold(frame):
    frame = frame.copy()
    rows = frame.index[frame["stock_on_hand"] < 3][:4]
    frame.loc[rows, "units_sold"] = frame.loc[rows, "stock_on_hand"] + 2
    return frame


def _event(frame):
    frame = frame.copy()
    frame.loc[frame.index[:3], "stockout"] = 2
    return frame


@pytest.mark.parametrize("break_it, expected", [
    (_drop_day, r"rows belong to series with a missing day \(item_id,warehouse_id,date; e\.g\. .*'item_id': 3"),
    (_repeat_day, r"2 rows repeat a series and day .*aggregate the duplicates"),
    (_negative, r"'units_sold': 5 days have negative units"),
    (_oversold, r"'units_sold': on 4 days it is above 'stock_on_hand' \(data\.panel\.capacity\)"),
    (_event, r"'stockout': 3 days are neither 0 nor 1 \(data\.panel\.events\)"),
])
def test_each_broken_panel_is_named(panel, cfg, break_it, expected):
    failures = _failures(break_it(panel), cfg)
    assert any(pd.Series([f]).str.contains(expected).iloc[0] for f in failures), failures


def test_validation_rules_name_panel_columns_and_the_split_is_the_backtest(cfg):
    raw = yaml.safe_load((ROOT / "configs" / "supply_chain.yaml").read_text())
    with pytest.raises(ValueError, match=r"validation.columns.units_sold_lag1: not a column of data.panel"):
        parse_config(apply_overrides(raw, {"validation.columns": {"units_sold_lag1": {"min": 0}}}))
    with pytest.raises(ValueError, match="data.split: with data.panel the split is the panel's backtest"):
        parse_config(apply_overrides(raw, {"data.split.method": "random"}))
    assert "units_sold_lag56" in cfg.data.schema.numeric and "units_sold" in cfg.data.raw_schema.numeric
    assert cfg.data.schema.labels == ("demand", "demand_14d", "demand_21d", "stockout_next", "stockout_next_14d",
                                      "stockout_next_21d", "late_open_order")


@pytest.fixture(scope="module")
def champion(panel, cfg, tmp_path_factory) -> dict:
    """The drift reference of a champion trained on ``panel``: its transform's statistics."""
    from mtl.data.features import Transform
    from mtl.data.features.preprocess import TRANSFORM, build

    root = tmp_path_factory.mktemp("panel_champion")
    raw_file = root / "panel.parquet"
    panel.to_parquet(raw_file, index=False)
    build(raw_file, cfg, root / "features")
    t = Transform.load(root / "features" / TRANSFORM)
    return {"name": "version 1", "stats": t.stats, "categorical": t.categorical}


def test_a_panel_drifts_against_the_daily_rows_its_champion_saw(panel, cfg, champion):
    """The champion was fitted on framed examples, a batch is daily rows: the daily columns are
    compared with the profile of the days its training saw, and a changed column is named."""
    from mtl.data.contracts.drift import compare

    same = {(m.check, m.column): m for m in compare(panel, champion, cfg)}
    assert {("psi", c) for c in ("units_sold", "stock_on_hand", "price", "promo")} <= set(same)
    assert ("new_category_rate", "item_id") in same
    assert all(m.level == "ok" for m in same.values()), [m.detail for m in same.values() if m.level != "ok"]

    drifted = panel.copy()
    drifted["price"] *= 3  # a currency change upstream
    new_items = drifted["item_id"] < 8  # 8 of 20 items renumbered: products the model never saw
    drifted.loc[new_items, "item_id"] += 1000
    measures = {(m.check, m.column): m for m in compare(drifted, champion, cfg)}
    assert measures[("psi", "price")].level == "error" and "'price'" in measures[("psi", "price")].detail
    assert measures[("new_category_rate", "item_id")].level == "error"
    assert measures[("psi", "units_sold")].level == "ok"
