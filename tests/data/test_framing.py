"""A daily panel framed into forecast examples (mtl/data/features/framing.py): nothing after the
origin in the features, the rolling backtest's splits, the labels against the panel itself."""

import numpy as np
import pandas as pd
import pytest

from mtl.config import InventoryConfig, OrdersConfig, PanelConfig, SupplyChainConfig
from mtl.data.features import framing
from mtl.data.ingest import supply_chain

HISTORY = ("units_sold", "price", "promo", "stock_on_hand", "on_order")
PANEL = PanelConfig(series=("item_id", "warehouse_id"), sums={"demand": "units_sold"},
                    events={"stockout_next": "stockout"}, orders=OrdersConfig(), history=HISTORY,
                    known=("price", "promo", "holiday"), static=("category_id", "supplier_id"),
                    truth={"demand": "expected_demand", "stockout_next": "p_stockout"}, lookback=28, horizon=7,
                    horizons=(14,), inventory=InventoryConfig())


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return supply_chain.generate(SupplyChainConfig(items=12, warehouses=2, days=160, seed=3))


@pytest.fixture(scope="module")
def examples(panel) -> pd.DataFrame:
    return framing.frame(panel, PANEL)


def _features(frame: pd.DataFrame) -> list[str]:
    """Every column but the labels, their truth and evaluation references (the horizon's, and
    the training period's naive error) and the planned horizon values."""
    labels = {*PANEL.labels, *(f"truth_{k}" for k in PANEL.truth_labels), *PANEL.reference}
    return [c for c in frame.columns if c not in labels and "_ahead" not in c]


def test_no_feature_comes_from_after_the_origin(panel, examples):
    """Rewrite every day after a cutoff (and the lead time of every order still open at it, which
    only its arrival reveals): the features of origins up to the cutoff do not move, their labels do."""
    cutoff = examples["origin"].sort_values().iloc[len(examples) // 2]  # some origins are on the cutoff day
    rng = np.random.default_rng(0)
    later = panel.copy()
    after = later["date"] > cutoff
    for col in ("units_sold", "stock_on_hand", "on_order", "stockout", "order_units", "expected_demand"):
        later.loc[after, col] = rng.permutation(later.loc[after, col].to_numpy())
    waited = (cutoff - later["date"]).dt.days  # days from an order's placing to the cutoff
    open_at_cutoff = (waited >= 0) & (later["order_units"] > 0) & (later["order_lead_days"] > waited)
    assert open_at_cutoff.sum() >= 5
    later.loc[open_at_cutoff, "order_lead_days"] += 40  # arrives later still: open at the cutoff either way
    again = framing.frame(later, PANEL)
    upto = examples["origin"] <= cutoff
    assert upto.sum() > 50
    cols = _features(examples)
    pd.testing.assert_frame_equal(examples.loc[upto, cols], again.loc[upto, cols])
    reaching = upto & (examples["origin"] + pd.Timedelta(days=PANEL.horizon) > cutoff)
    assert (examples.loc[reaching, "demand"] != again.loc[reaching, "demand"]).any()  # the check can fail


def test_the_backtest_is_by_time_with_a_horizon_between_splits(panel, examples):
    h, every = PANEL.span, PANEL.origin_every  # the longest horizon: no label of any reaches the next split
    assert h == 14
    per_series = examples.groupby(["item_id", "warehouse_id", "split"]).size().unstack()
    assert (per_series["test"] == PANEL.test_origins).all()
    assert (per_series["validation"] == PANEL.validation_origins).all()
    for _, one in examples.groupby(["item_id", "warehouse_id"]):
        test = one.loc[one["split"] == "test", "origin"].sort_values()
        assert set(test.diff().dropna()) == {pd.Timedelta(days=every)}  # one origin a week
    by = examples.groupby("split")["origin"]
    horizon = pd.Timedelta(days=h)
    assert by.max()["train"] + horizon <= by.min()["validation"]
    assert by.max()["validation"] + horizon <= by.min()["test"]
    assert by.max()["test"] + horizon <= panel["date"].max()  # every test horizon is in the data
    assert set(examples["origin_weekday"]) == set(range(7))  # origins on every weekday, across series
    assert (examples["origin"] - pd.Timedelta(days=PANEL.lookback - 1) >= panel["date"].min()).all()


def test_one_example_by_hand(panel, examples):
    row = examples[examples["split"] == "validation"].iloc[3]
    series = panel[(panel["item_id"] == row["item_id"]) & (panel["warehouse_id"] == row["warehouse_id"])]
    series = series.set_index("date").sort_index()
    origin = row["origin"]
    past = series.loc[origin - pd.Timedelta(days=PANEL.lookback - 1): origin]
    future = series.loc[origin + pd.Timedelta(days=1): origin + pd.Timedelta(days=PANEL.horizon)]
    assert len(past) == PANEL.lookback and len(future) == PANEL.horizon
    assert row["units_sold_lag1"] == series.loc[origin, "units_sold"]
    assert row[f"stock_on_hand_lag{PANEL.lookback}"] == past["stock_on_hand"].iloc[0]
    assert row["price_ahead1"] == pytest.approx(future["price"].iloc[0])
    assert row["demand"] == future["units_sold"].sum()
    assert row["stockout_next"] == int(future["stockout"].max())
    assert row["truth_demand"] == pytest.approx(future["expected_demand"].sum(), rel=1e-6)
    assert row["truth_stockout_next"] == pytest.approx(1 - np.prod(1 - future["p_stockout"].to_numpy()), rel=1e-5)
    assert row["category_id"] == series["category_id"].iloc[0] and row["origin_weekday"] == origin.dayofweek
    # the longer horizon: days 1..14, seasonal naive repeating the week before the origin twice
    two = series.loc[origin + pd.Timedelta(days=1): origin + pd.Timedelta(days=14)]
    week = series.loc[origin - pd.Timedelta(days=6): origin, "units_sold"].sum()
    assert row["demand_14d"] == two["units_sold"].sum() and row["stockout_next_14d"] == int(two["stockout"].max())
    assert row["naive_demand"] == week and row["naive_demand_14d"] == 2 * week
    assert row["truth_demand_14d"] == pytest.approx(two["expected_demand"].sum(), rel=1e-6)
    assert row["price_ahead14"] == pytest.approx(two["price"].iloc[-1])
    # the stock an order placed at the origin starts from: the shelf at the day's end, plus on order
    day = series.loc[origin]
    assert row["inventory_position"] == day["stock_on_hand"] - day["units_sold"] + day["on_order"]
    assert row["lead_days"] == day["promised_lead_days"]


def _one_series(days: int, orders: dict[int, tuple[int, int]]) -> pd.DataFrame:
    """One series, ``days`` days; orders: placed day -> (promised lead, realised lead), 5 units each."""
    frame = pd.DataFrame({"date": pd.date_range("2025-01-06", periods=days), "item_id": 1, "warehouse_id": 1,
                          "units_sold": 1.0, "order_units": 0, "promised_lead_days": 3, "order_lead_days": np.nan})
    for day, (promised, lead) in orders.items():
        frame.loc[day, ["order_units", "promised_lead_days", "order_lead_days"]] = [5, promised, lead]
    return frame


def test_open_orders_and_the_late_label_by_hand():
    cfg = PanelConfig(series=("item_id", "warehouse_id"), sums={"demand": "units_sold"}, orders=OrdersConfig(),
                      history=("units_sold",), lookback=3, horizon=2)
    panel = _one_series(40, {10: (3, 5), 20: (4, 4), 21: (2, 6)})  # late, on time, late
    grid = framing.to_grid(panel, cfg)
    at = pd.DataFrame({"series": 0, "t": [9, 10, 12, 14, 15, 20, 22, 26, 27]})
    got = framing._examples(grid, cfg, at, labels=True).set_index(at["t"])
    # placed day 10, lead 5: open at origins 10..14, promised back on day 13 -> 1 day overdue at 14
    assert got.loc[[9, 10, 12, 14, 15], "open_orders"].tolist() == [0, 1, 1, 1, 0]
    assert got.loc[[10, 12, 14], "overdue_days"].tolist() == [0, 0, 1]
    assert got.loc[[10, 14], "late_open_order"].tolist() == [1, 1]
    assert got.loc[[9, 15], "late_open_order"].isna().all()  # nothing open: no label
    # day 20 (on time, open 20..23) and day 21 (late, open 21..26): both open at 22, one late
    assert got.loc[22, ["open_orders", "open_units", "late_open_order"]].tolist() == [2, 10, 1]
    assert got.loc[20, "late_open_order"] == 0
    assert got.loc[26, "overdue_days"] == 26 - 21 - 2 and np.isnan(got.loc[27, "late_open_order"])


def test_the_latest_origin_of_each_series_is_its_newest_day(panel):
    latest = framing.frame_latest(panel, PANEL)
    assert len(latest) == 24 and (latest["origin"] == panel["date"].max()).all()
    assert "demand" not in latest and latest["price_ahead1"].isna().all()  # no planned days after the data
    newest = panel[panel["date"] == panel["date"].max()].set_index(["item_id", "warehouse_id"])["units_sold"]
    assert (latest.set_index(["item_id", "warehouse_id"])["units_sold_lag1"] == newest).all()


def test_a_series_may_start_late_but_never_uses_days_it_lacks(panel):
    late_start = panel[~((panel["item_id"] == 0) & (panel["date"] < panel["date"].min() + pd.Timedelta(days=60)))]
    framed = framing.frame(late_start, PANEL)
    first = framed.loc[framed["item_id"] == 0, "origin"].min()
    assert first - pd.Timedelta(days=PANEL.lookback - 1) >= panel["date"].min() + pd.Timedelta(days=60)


def test_bad_panels_are_named(panel):
    with pytest.raises(framing.FramingError, match=r"day twice.*item_id=0, warehouse_id=0"):
        framing.frame(pd.concat([panel.iloc[:1], panel]), PANEL)
    with pytest.raises(framing.FramingError, match=r"\['stock_on_hand'\]"):
        framing.frame(panel.drop(columns="stock_on_hand"), PANEL)
    with pytest.raises(framing.FramingError, match="no training origin.*at least"):
        framing.frame(panel[panel["date"] < panel["date"].min() + pd.Timedelta(days=60)], PANEL)
    with pytest.raises(ValueError, match="truth names 'dwell'"):
        PanelConfig(series=("item_id",), sums={"demand": "units_sold"}, truth={"dwell": "x"})


def test_preprocess_frames_the_panel_and_fits_on_training_origins_only(tmp_path):
    """The preset's preprocess: the raw panel in, the framed examples' transform and shards out,
    split by the backtest; the framed file is not left behind."""
    from pathlib import Path

    import yaml

    from mtl.config import apply_overrides, parse_config
    from mtl.data.features.preprocess import build

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "supply_chain.yaml").read_text())
    cfg = parse_config(apply_overrides(raw, {"data.synthetic.items": 10, "data.synthetic.warehouses": 2,
                                             "data.synthetic.days": 200}))
    raw_file = tmp_path / "01_raw" / "panel.parquet"
    supply_chain.write(cfg.data.synthetic, raw_file)
    summary = build(raw_file, cfg, tmp_path / "03_features")
    rows = summary["split"]["rows"]
    panel = cfg.data.panel
    assert (rows["test"], rows["validation"]) == (20 * panel.test_origins, 20 * panel.validation_origins)
    assert summary["split"]["method"] == "column" and rows["train"] > rows["test"]
    assert set(summary["inputs"]["numeric"]) >= {"units_sold_lag1", "price_ahead7", "open_orders"}
    test_raw = pd.read_parquet(tmp_path / "03_features" / "test_raw.parquet")
    assert len(test_raw) == rows["test"] and {"demand", "truth_demand", "origin"} <= set(test_raw.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_raw", "03_features"]
