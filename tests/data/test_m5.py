"""The M5 adapter on a tiny copy of the Kaggle layout (tests/data/samples/m5, written by
tests/data/samples/make_m5.py): 6 items x 2 stores x 60 days become one panel row per item, store
and day, with the calendar and the weekly prices joined; a wrong layout says what to download."""

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mtl.config import load_config, parse_config
from mtl.data.ingest.adapters import SourceError, get_adapter
from mtl.data.ingest.sources import ingest
from mtl.paths import Paths
from tests.conftest import REPO

SAMPLE = REPO / "tests" / "data" / "samples" / "m5"
ITEMS, STORES, DAYS = 6, 2, 60
DOWNLOAD = "kaggle.com/competitions/m5-forecasting-accuracy"
TYPES = {"date": pa.timestamp("ns"), "item_id": pa.string(), "warehouse_id": pa.string(),
         "category_id": pa.string(), "department_id": pa.string(), "state_id": pa.string(),
         "units_sold": pa.int32(), "price": pa.float32(), "on_sale": pa.int8(), "holiday": pa.int8(),
         "event_type": pa.string(), "snap": pa.int8()}


@pytest.fixture
def data(tmp_path):
    """A copy of the sample: tests edit it, never the committed one."""
    return shutil.copytree(SAMPLE, tmp_path / "m5")


def preset(path):
    return load_config(REPO / "configs" / "m5.yaml", {"data.path": str(path)})


def run_ingest(cfg, tmp_path):
    paths = Paths.at(tmp_path / "project")
    manifest = ingest(cfg, paths)
    return manifest, pd.read_parquet(paths.raw_file), paths


def read(path, **schema) -> pd.DataFrame:
    cfg = parse_config({"data": {"source": "m5", "path": str(path), "schema": schema or {
        "categorical": ["item_id", "warehouse_id"], "numeric": ["price", "on_sale", "holiday", "snap"],
        "labels": ["units_sold"], "time": "date"}},
        "tasks": [{"name": "units", "label": "units_sold", "type": "regression"}]})
    adapter = get_adapter("m5")
    reading = adapter.read(adapter.files(path), cfg)
    return pa.Table.from_batches(list(reading.batches), reading.schema).to_pandas()


def row(panel, item, store, date):
    (found,) = panel[(panel["item_id"] == item) & (panel["warehouse_id"] == store)
                     & (panel["date"] == pd.Timestamp(date))].to_dict("records")
    return found


# --------------------------------------------------------------------------- the panel


def test_sample_becomes_one_row_per_item_store_and_day(data, tmp_path):
    cfg = preset(data)
    manifest, raw, paths = run_ingest(cfg, tmp_path)
    assert len(raw) == manifest["rows"] == ITEMS * STORES * DAYS
    assert list(raw.columns) == list(cfg.data.raw_schema.required_columns())  # the panel's, as data.panel names them
    assert {f.name: f.type for f in pq.read_schema(paths.raw_file)} == {k: v for k, v in TYPES.items()
                                                                        if k != "event_type"}
    series = raw.groupby(["item_id", "warehouse_id"])["date"]
    assert series.ngroups == ITEMS * STORES and (series.nunique() == DAYS).all()
    assert raw["date"].min() == pd.Timestamp("2011-01-29") and raw["date"].max() == pd.Timestamp("2011-03-29")
    assert manifest["adapter"] == "m5" and "splits" not in manifest  # split by days of `date`
    # the ids of the sales file, under the panel's names
    assert set(raw["category_id"]) == {"HOBBIES", "HOUSEHOLD", "FOODS"} and set(raw["state_id"]) == {"CA", "TX"}
    assert set(raw["department_id"]) == {"HOBBIES_1", "HOUSEHOLD_1", "HOUSEHOLD_2", "FOODS_1", "FOODS_3"}


def test_hand_checked_rows(data):
    panel = read(data, categorical=["item_id", "warehouse_id", "event_type"],
                 numeric=["price", "on_sale", "holiday", "snap"], labels=["units_sold"], time="date")
    # d_9 = 2011-02-06, Super Bowl, a SNAP day in TX; week 11102 at 11.88
    super_bowl = row(panel, "HOUSEHOLD_2_001", "TX_1", "2011-02-06")
    assert super_bowl.pop("price") == pytest.approx(11.88)
    assert super_bowl == {"date": pd.Timestamp("2011-02-06"), "item_id": "HOUSEHOLD_2_001", "warehouse_id": "TX_1",
                          "event_type": "Sporting", "units_sold": 4, "on_sale": 1, "holiday": 1, "snap": 1}
    # d_37 = 2011-03-06, no event, week 11106: the price cut to 2.05
    later = row(panel, "FOODS_3_001", "TX_1", "2011-03-06")
    assert (later["units_sold"], later["holiday"], later["snap"]) == (2, 0, 1) and pd.isna(later["event_type"])
    assert later["price"] == pytest.approx(2.05)
    # SNAP is the row's state's: 2011-02-02 is a SNAP day in CA, not in TX
    assert row(panel, "HOBBIES_1_001", "CA_1", "2011-02-02")["snap"] == 1
    assert row(panel, "HOBBIES_1_001", "TX_1", "2011-02-02")["snap"] == 0
    days = panel.drop_duplicates("date").set_index("date")
    assert days.loc[days["holiday"] == 1].index.strftime("%m-%d").tolist() == [
        "02-06", "02-14", "02-21", "03-09", "03-16", "03-17", "03-20"]


def test_an_event_in_event_name_2_alone_is_a_holiday(data):
    calendar = pd.read_csv(data / "calendar.csv", keep_default_na=False)
    calendar.loc[calendar["d"] == "d_41", ["event_name_2", "event_type_2"]] = ["Purim End", "Religious"]
    calendar.to_csv(data / "calendar.csv", index=False)
    panel = read(data, categorical=["item_id", "event_type"], numeric=["holiday"], labels=["units_sold"], time="date")
    day = panel[panel["date"] == pd.Timestamp("2011-03-10")]  # d_41: no event_name_1
    assert (day["holiday"] == 1).all() and day["event_type"].isna().all()  # event_type is event_type_1
    assert int(panel["holiday"].sum()) == 8 * ITEMS * STORES


def test_week_without_a_price_is_not_on_sale(data):
    panel = read(data)
    week = (panel["date"] >= "2011-02-26") & (panel["date"] <= "2011-03-04")  # wm_yr_wk 11105
    item = panel["item_id"] == "HOUSEHOLD_1_001"
    missing = panel[week & item & (panel["warehouse_id"] == "TX_1")]
    assert len(missing) == 7 and missing["price"].isna().all() and (missing["on_sale"] == 0).all()
    assert (missing["units_sold"] == 0).all()
    other_store = panel[week & item & (panel["warehouse_id"] == "CA_1")]
    assert np.allclose(other_store["price"], 5.94) and (other_store["on_sale"] == 1).all()
    # not yet listed: the first three weeks of FOODS_1_001 in CA_1 are rows without price or sales
    early = panel[(panel["item_id"] == "FOODS_1_001") & (panel["warehouse_id"] == "CA_1")].iloc[:21]
    assert early["price"].isna().all() and (early[["on_sale", "units_sold"]] == 0).all().all()
    assert int(panel["on_sale"].sum()) == ITEMS * STORES * DAYS - 21 - 7


def test_only_the_asked_columns_and_no_prices_when_none_are_asked(data):
    # a sell_prices.csv with the right header but unreadable rows: not read unless price or on_sale is asked
    (data / "sell_prices.csv").write_text("store_id,item_id,wm_yr_wk,sell_price\nCA_1,X,not-a-week,x\n")
    panel = read(data, categorical=["item_id"], labels=["units_sold"], time="date")
    assert list(panel.columns) == ["date", "item_id", "units_sold"] and len(panel) == ITEMS * STORES * DAYS
    with pytest.raises(SourceError, match=r"m5: could not read .*sell_prices.csv \(column 'wm_yr_wk'\)"):
        read(data)


def test_evaluation_file_is_preferred_to_validation(data):
    sales = pd.read_csv(data / "sales_train_evaluation.csv")
    validation = sales.iloc[:, : 6 + 50].assign(id=sales["id"].str.replace("evaluation", "validation"))
    validation.to_csv(data / "sales_train_validation.csv", index=False)
    files = get_adapter("m5").files(data)
    assert [f.name for f in files] == ["calendar.csv", "sales_train_evaluation.csv", "sell_prices.csv"]
    assert read(data)["date"].nunique() == DAYS
    (data / "sales_train_evaluation.csv").unlink()
    only_validation = read(data)
    assert len(only_validation) == ITEMS * STORES * 50 and only_validation["date"].nunique() == 50


def test_blocks_smaller_than_the_file_give_the_same_rows(data, monkeypatch):
    from mtl.data.ingest.adapters import base, m5

    whole = read(data)
    monkeypatch.setattr(base, "CSV_BLOCK_BYTES", 512)  # two or three series of the sample per block
    monkeypatch.setattr(m5, "SERIES_PER_BATCH", 2)
    cfg = preset(data)
    adapter = get_adapter("m5")
    batches = list(adapter.read(adapter.files(data), cfg).batches)
    assert len(batches) >= ITEMS * STORES // 2 and max(b.num_rows for b in batches) <= 2 * DAYS
    pd.testing.assert_frame_equal(read(data), whole)


def test_generate_stage_materialises_the_panel(data, tmp_path):
    from mtl.stages import generate

    cfg = parse_config({
        "data": {"source": "m5", "path": str(data), "schema": {"categorical": ["item_id", "warehouse_id"],
                                                                "numeric": ["price"], "labels": ["units_sold"],
                                                                "time": "date"}},
        "tasks": [{"name": "units", "label": "units_sold", "type": "regression"}]})
    paths = Paths.at(tmp_path / "project")
    manifest = generate.run(cfg, paths)
    assert paths.raw_file.parent == tmp_path / "project" / "data" / "01_raw" and paths.raw_manifest.is_file()
    assert pq.read_metadata(paths.raw_file).num_rows == manifest["rows"] == ITEMS * STORES * DAYS
    assert manifest["adapter"] == "m5" and len(manifest["files"]) == 3
    assert pq.read_schema(paths.raw_file).names == ["item_id", "warehouse_id", "price", "units_sold", "date"]


# --------------------------------------------------------------------------- wrong layouts


@pytest.mark.parametrize("missing", ["sales_train_evaluation.csv", "calendar.csv", "sell_prices.csv"])
def test_missing_file_is_named_with_where_to_download_it(data, tmp_path, missing):
    (data / missing).unlink()
    with pytest.raises(SourceError) as err:
        run_ingest(preset(data), tmp_path)
    msg = str(err.value)
    assert msg.startswith("data.path: m5: ") and f"has no {missing}" in msg and DOWNLOAD in msg


@pytest.mark.parametrize("file, column, renamed", [
    ("sales_train_evaluation.csv", "store_id", "store"),
    ("calendar.csv", "wm_yr_wk", "week"),
    ("sell_prices.csv", "sell_price", "price"),
])
def test_wrong_header_names_the_file_the_column_and_the_fix(data, tmp_path, file, column, renamed):
    lines = (data / file).read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace(column, renamed, 1)
    (data / file).write_text("".join(lines))
    with pytest.raises(SourceError) as err:
        run_ingest(preset(data), tmp_path)
    msg = str(err.value)
    assert file in msg and f"lacks the column(s) {column}" in msg and renamed in msg and DOWNLOAD in msg


def test_calendar_without_a_days_row_or_a_states_snap(data, tmp_path):
    calendar = pd.read_csv(data / "calendar.csv", keep_default_na=False)
    calendar.drop(columns="snap_TX").to_csv(data / "calendar.csv", index=False)
    with pytest.raises(SourceError, match=r"no SNAP column for state\(s\) TX"):
        read(data)
    calendar.iloc[:-1].to_csv(data / "calendar.csv", index=False)
    with pytest.raises(SourceError, match=r"calendar.csv has no row for d_60 of sales_train_evaluation.csv"):
        read(data)


@pytest.mark.parametrize("cell, error", [("", "has an empty value in column 'd_7'"),
                                         ("1.5", r"could not read .* \(column 'd_7'\)")])
def test_bad_daily_sales_name_the_day(data, cell, error):
    sales = data / "sales_train_evaluation.csv"
    lines = sales.read_text().splitlines()
    cells = lines[-1].split(",")
    cells[6 + 6] = cell  # d_7 of the last series
    lines[-1] = ",".join(cells)
    sales.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"m5: .*" + error):
        read(data)


def test_path_to_a_file_instead_of_the_folder(data):
    with pytest.raises(SourceError, match="data.path is the folder holding it"):
        get_adapter("m5").files(data / "calendar.csv")
