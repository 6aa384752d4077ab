"""The generated supply-chain panel: complete, sorted, censored by stock, and true to its truth.

Calibration checks are z-scores. A day's demand is drawn afresh given its mean, and that
morning's stock depends only on earlier days, so ``stockout - p_stockout`` (and ``demand -
expected_demand``) are martingale differences: uncorrelated, their sum divided by the root of the
summed variances is about standard normal. |z| < 4 fails a correct generator with a chance of
about 6e-5 (and the seed is fixed), while a biased truth shows up as a z in the tens.
"""

import numpy as np
import pandas as pd
import pytest

from mtl.config import ConfigError, SupplyChainConfig, SyntheticConfig, parse_config
from mtl.data.ingest import supply_chain
from mtl.data.ingest.sources import materialise_raw
from mtl.names import SYNTHETIC_KINDS
from mtl.paths import Paths
from tests.code.test_config import raw_params

SMALL = dict(items=40, warehouses=2, categories=5, suppliers=6, days=120)
YEAR = dict(items=60, warehouses=2, categories=5, suppliers=8, days=365)  # covers November-January


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return supply_chain.generate(SupplyChainConfig(**SMALL))


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return supply_chain.generate(SupplyChainConfig(**YEAR))


def z_score(observed: pd.Series, expected: pd.Series, variance: pd.Series) -> float:
    return float((observed.astype(float) - expected).sum() / np.sqrt(variance.sum()))


def test_deterministic_by_seed():
    a = supply_chain.generate(SupplyChainConfig(**(SMALL | {"days": 30})))
    b = supply_chain.generate(SupplyChainConfig(**(SMALL | {"days": 30})))
    c = supply_chain.generate(SupplyChainConfig(**(SMALL | {"days": 30, "seed": 7})))
    pd.testing.assert_frame_equal(a, b)
    assert not a["demand"].equals(c["demand"])


def test_columns_and_dtypes(panel):
    expected = {
        "date": "datetime64[ns]", "item_id": "int64", "warehouse_id": "int64", "category_id": "int64",
        "supplier_id": "int64", "price": "float32", "promo": "int8", "holiday": "int8", "stock_on_hand": "int32",
        "units_received": "int32", "on_order": "int32", "units_sold": "int32", "stockout": "int8",
        "order_units": "int32", "promised_lead_days": "int16", "order_lead_days": "float32",
        "order_late": "float32", "demand": "int32", "expected_demand": "float32", "p_stockout": "float32",
        "p_late": "float32",
    }
    assert {c: str(t) for c, t in panel.dtypes.items()} == expected
    assert list(panel.columns) == list(supply_chain.COLUMNS)
    assert (panel["price"] > 0).all() and panel["promo"].isin([0, 1]).all()


def test_one_row_per_series_and_day_sorted_without_gaps(panel):
    series, days = SMALL["items"] * SMALL["warehouses"], SMALL["days"]
    assert len(panel) == series * days
    dates = panel["date"].to_numpy().reshape(series, days)
    calendar = pd.date_range(SupplyChainConfig(**SMALL).start, periods=days, freq="D").to_numpy()
    assert (dates == calendar).all()  # every series: every day, in order, from start
    item, warehouse = np.divmod(np.arange(series), SMALL["warehouses"])
    assert (panel["item_id"].to_numpy().reshape(series, days) == item[:, None]).all()
    assert (panel["warehouse_id"].to_numpy().reshape(series, days) == warehouse[:, None]).all()
    for col in ("category_id", "supplier_id"):  # an item has one category and one supplier
        assert panel.groupby("item_id")[col].nunique().max() == 1
    assert panel.groupby("date")["holiday"].nunique().max() == 1  # a calendar day, the same everywhere


def test_item_prices_do_not_depend_on_the_chunking(monkeypatch):
    # Chunks of 3 series split items across chunks: an item's price path comes from its own stream.
    monkeypatch.setattr(supply_chain, "CHUNK_SERIES", 3)
    frame = supply_chain.generate(SupplyChainConfig(**(SMALL | {"items": 9, "days": 60})))
    by_warehouse = frame.pivot_table(index=["item_id", "date"], columns="warehouse_id", values=["price", "promo"])
    assert (by_warehouse["price"][0] == by_warehouse["price"][1]).all()
    assert (by_warehouse["promo"][0] == by_warehouse["promo"][1]).all()


def test_sales_are_demand_censored_by_stock(panel):
    sold, demand, stock = panel["units_sold"], panel["demand"], panel["stock_on_hand"]
    assert (sold == np.minimum(demand, stock)).all()
    assert (sold <= stock).all() and (stock >= 0).all()
    assert (panel["stockout"] == (stock - sold == 0)).all()
    assert (demand > sold).any()  # censoring happens: some demand is lost


def test_stock_balances_day_to_day(panel):
    series = panel["item_id"] * SMALL["warehouses"] + panel["warehouse_id"]
    same = (series == series.shift(-1)).to_numpy()
    nxt = panel.shift(-1)
    closing = panel["stock_on_hand"] - panel["units_sold"]
    assert (nxt["stock_on_hand"] == closing + nxt["units_received"])[same].all()
    assert (nxt["on_order"] == panel["on_order"] + panel["order_units"] - nxt["units_received"])[same].all()
    assert (panel["on_order"] >= 0).all() and (panel["order_units"] >= 0).all()


def test_stockouts_are_plausible_and_p_stockout_is_calibrated(panel):
    share = panel["stockout"].mean()
    assert 0.005 < share < 0.25
    p = panel["p_stockout"].astype(float)
    assert p.between(0, 1).all()
    assert (p[panel["stock_on_hand"] == 0] == 1).all()
    assert abs(z_score(panel["stockout"], p, p * (1 - p))) < 4
    # and it is informative: stock-out days have a far higher predicted chance than the others
    assert p[panel["stockout"] == 1].mean() > 5 * p[panel["stockout"] == 0].mean()


def test_demand_matches_its_expectation(panel):
    residual = panel["demand"] - panel["expected_demand"].astype(float)
    assert abs(z_score(panel["demand"], panel["expected_demand"], residual**2)) < 4
    assert abs(panel["demand"].mean() / panel["expected_demand"].mean() - 1) < 0.05


def test_intermittent_items_have_mostly_zero_demand(panel):
    cfg = SupplyChainConfig(**SMALL)
    intermittent = supply_chain.build_world(cfg).intermittent[panel["item_id"].to_numpy()]
    zero = panel["demand"] == 0
    assert intermittent.any() and (~intermittent).any()
    assert zero[intermittent].mean() > 0.6
    assert zero[intermittent].mean() > zero[~intermittent].mean() + 0.3
    share = supply_chain.build_world(SupplyChainConfig()).intermittent.mean()
    assert abs(share - SupplyChainConfig().intermittent_share) < 0.06  # 500 items: sd 0.02


def test_weekly_seasonality_and_promotions_move_demand(panel):
    weekday = panel.groupby(panel["date"].dt.day_of_week)["expected_demand"].mean()
    assert weekday.max() / weekday.min() > 1.05
    assert 0.02 < panel["promo"].mean() < 0.2
    per_series = panel.groupby(["item_id", "warehouse_id", "promo"])["units_sold"].mean().unstack().dropna()
    assert len(per_series) > 20
    assert (per_series[1] > per_series[0]).mean() > 0.7
    assert (per_series[1] - per_series[0]).mean() > 0


def test_orders_and_their_lead_times_are_consistent(year):
    ordered = year["order_units"] > 0
    assert 0.05 < ordered.mean() < 0.5  # weekly review: at most one order a series a week
    for col in ("order_lead_days", "order_late", "p_late"):
        assert year.loc[ordered, col].notna().all() and year.loc[~ordered, col].isna().all()
    orders = year[ordered]
    late = orders["order_lead_days"] > orders["promised_lead_days"]
    assert (orders["order_late"] == late).all()
    assert orders["promised_lead_days"].between(3, 14).all()
    assert (orders["order_lead_days"] >= orders["promised_lead_days"] - 1).all()
    p = orders["p_late"].astype(float)
    assert abs(z_score(orders["order_late"], p, p * (1 - p))) < 4


def test_lead_times_vary_by_supplier_and_season(year):
    orders = year[year["order_units"] > 0]
    delay = orders["order_lead_days"] - orders["promised_lead_days"]
    by_supplier = delay.groupby(orders["supplier_id"]).agg(["mean", "std", "count"])
    standard_error = (by_supplier["std"] / np.sqrt(by_supplier["count"])).max()
    assert by_supplier["mean"].max() - by_supplier["mean"].min() > 4 * standard_error
    peak = orders["date"].dt.month.isin([11, 12, 1]).to_numpy()
    assert peak.any() and (~peak).any()
    assert delay[peak].mean() > delay[~peak].mean() + 0.1
    # the year-end run-up is on the calendar too
    december = year[year["date"].dt.month == 12]
    assert december["holiday"].sum() > 0


def test_write_round_trips(tmp_path, panel):
    cfg = SupplyChainConfig(**SMALL)
    path = tmp_path / "raw" / "panel.parquet"
    assert supply_chain.write(cfg, path) == len(panel)
    assert not path.with_suffix(".parquet.tmp").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(path), panel)


def test_generate_stage_writes_the_configured_kind(tmp_path):
    raw = raw_params()
    raw["data"]["synthetic"] = {"kind": "supply_chain", **(SMALL | {"items": 5, "days": 20})}
    cfg = parse_config(raw)
    paths = Paths.at(tmp_path)
    manifest = materialise_raw(cfg, paths)
    assert manifest["source"] == "synthetic" and manifest["synthetic"]["kind"] == "supply_chain"
    assert manifest["rows"] == 5 * SMALL["warehouses"] * 20
    assert list(pd.read_parquet(paths.raw_file).columns) == list(supply_chain.COLUMNS)


def test_config_kind_defaults_to_impressions_and_selects_the_generator():
    raw = raw_params()
    assert "kind" not in raw["data"]["synthetic"]  # the shipped params.yaml predates kinds
    assert isinstance(parse_config(raw).data.synthetic, SyntheticConfig)
    assert parse_config(raw).data.synthetic.kind == "impressions"
    for kind in SYNTHETIC_KINDS:
        raw["data"]["synthetic"] = {"kind": kind}
        assert parse_config(raw).data.synthetic.kind == kind
    raw["data"]["synthetic"] = {"kind": "supply_chain", "items": 7}
    cfg = parse_config(raw)
    assert isinstance(cfg.data.synthetic, SupplyChainConfig) and cfg.data.synthetic.items == 7


@pytest.mark.parametrize(
    "synthetic, expected",
    [
        ({"kind": "inventory"}, "data.synthetic.kind: unknown synthetic kind 'inventory'; "
                                "choose one of ['impressions', 'supply_chain']"),
        ({"kind": "supply_chain", "rows": 10}, "data.synthetic.rows: unknown key of data.synthetic kind"),
        ({"kind": "supply_chain", "start": "2025-13-01"}, "data.synthetic.start"),
        ({"kind": "supply_chain", "items": 0}, "data.synthetic.items"),
        ({"kind": "supply_chain", "promo_share": 1.5}, "data.synthetic.promo_share"),
        ({"kind": "supply_chain", "intermittent_share": -0.1}, "data.synthetic.intermittent_share"),
        ({"task_correlation": 2.0}, "data.synthetic.task_correlation"),
    ],
)
def test_bad_synthetic_config_names_the_key(synthetic, expected):
    raw = raw_params()
    raw["data"]["synthetic"] = synthetic
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert expected in str(err.value)
