"""Walmart M5 (Kaggle "M5 Forecasting - Accuracy"): the wide sales files become a long daily panel.

The download is a folder of CSV files; three are read:

- ``sales_train_evaluation.csv`` (d_1..d_1941), or ``sales_train_validation.csv`` (d_1..d_1913)
  when only that one is there: one row per item and store, with ``id, item_id, dept_id, cat_id,
  store_id, state_id`` and one column of daily unit sales per day, d_1 being 2011-01-29;
- ``calendar.csv``: one row per day ``d``: its date, Walmart week (``wm_yr_wk``), events
  (``event_name_1/2``, ``event_type_1/2``, empty when none) and SNAP days per state (``snap_CA``...);
- ``sell_prices.csv``: ``store_id, item_id, wm_yr_wk, sell_price``, one row per week an item was
  on sale in a store.

The raw log is one row per item x store x day, as the synthetic supply-chain panel
(mtl/data/ingest/supply_chain.py), whose names it shares where the meaning is the same: ``date``,
``item_id``, ``warehouse_id`` (the store), ``category_id`` (cat_id), ``department_id`` (dept_id),
``state_id``, ``units_sold`` (int32), ``price`` (float32, the week's sell_price; null when the
item was not on sale that week), ``on_sale`` (int8: the week has a price), ``holiday`` (int8: the
day has an event), ``event_type`` (event_type_1, null on other days) and ``snap`` (int8: the SNAP
flag of the row's state that day). Rows come series by series, days in the file's order.

What M5 does not have: stock, orders, deliveries and promotions (no stock_on_hand,
units_received, on_order, order_units, promo, stockout). Its sales are therefore not censored by a
known stock: a zero may be no demand or an empty shelf, and nothing here tells them apart. A
series' days before its first sale are mostly days the item was not yet listed in that store (no
price either): the rows are kept, with ``units_sold`` 0 and ``on_sale`` 0, so a model or a filter
downstream can tell them by ``on_sale``.

Memory is bounded by a block of the sales file (base.CSV_BLOCK_BYTES of CSV, melted
SERIES_PER_BATCH series at a time), the calendar (~2,000 rows) and the prices, loaded once as a
dense float32 table of (store, item) pairs x weeks (~35 MB for the full dataset). The prices are
read only when ``price`` or ``on_sale`` is asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mtl.data.ingest.adapters.base import (
    CSV_SUFFIXES,
    Adapter,
    Reading,
    SourceError,
    csv_header,
    iter_csv,
    short_list,
    stem,
    wanted_columns,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from mtl.config import Config

DOWNLOAD = "https://www.kaggle.com/competitions/m5-forecasting-accuracy/data"
# The sales file, preferred first: evaluation holds the 28 days validation lacks.
SALES = ("sales_train_evaluation", "sales_train_validation")
CALENDAR = "calendar"
PRICES = "sell_prices"
SALES_IDS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
CALENDAR_COLUMNS = ("date", "wm_yr_wk", "d", "event_name_1", "event_type_1", "event_name_2", "event_type_2")
PRICE_COLUMNS = ("store_id", "item_id", "wm_yr_wk", "sell_price")
DAY = re.compile(r"d_\d+")
SNAP = re.compile(r"snap_(\w+)")
# Panel id column -> the sales column it copies.
IDS = {"item_id": "item_id", "warehouse_id": "store_id", "category_id": "cat_id",
       "department_id": "dept_id", "state_id": "state_id"}
# Series melted at once: 256 series of the full dataset are ~500k rows (a parquet row group).
SERIES_PER_BATCH = 256


def panel_types() -> dict[str, "pa.DataType"]:
    """Every column the adapter can produce, in panel order, with its arrow type."""
    import pyarrow as pa

    return {"date": pa.timestamp("ns"), **{c: pa.string() for c in IDS}, "units_sold": pa.int32(),
            "price": pa.float32(), "on_sale": pa.int8(), "holiday": pa.int8(), "event_type": pa.string(),
            "snap": pa.int8()}


def find(folder: Path, name: str) -> Path | None:
    """``folder/name.csv`` (or .csv.gz, .csv.bz2) if present."""
    return next((folder / (name + s) for s in CSV_SUFFIXES if (folder / (name + s)).is_file()), None)


@dataclass(frozen=True)
class Calendar:
    """The calendar of the sales file's days, in its column order (one entry per day)."""

    date: np.ndarray  # datetime64[ns]
    week_index: np.ndarray  # each day's column in Prices.table
    weeks: np.ndarray  # the sorted distinct wm_yr_wk of the days
    holiday: np.ndarray  # int8
    event_type: np.ndarray  # object: str or None
    snap: dict[str, np.ndarray]  # state -> int8 flag per day
    source: Path  # the calendar file, for messages

    def snap_of(self, states: Sequence[str]) -> np.ndarray:
        """(series, days) SNAP flags of each series' state."""
        unknown = sorted(set(states) - set(self.snap))
        if unknown:
            raise SourceError(f"m5: {self.source} has no SNAP column for state(s) {short_list(unknown)} of the sales "
                              f"file (found {short_list('snap_' + s for s in self.snap)}); use the calendar.csv "
                              f"of the same download ({DOWNLOAD})")
        return np.stack([self.snap[s] for s in states]) if states else np.empty((0, len(self.date)), np.int8)


@dataclass(frozen=True)
class Prices:
    """Weekly prices as a dense table: one row per (store, item) pair, one column per week."""

    rows: dict[tuple[str, str], int]  # (store_id, item_id) -> its row of ``table``
    table: np.ndarray  # float32, NaN where the pair had no price that week

    def of(self, stores: Sequence[str], items: Sequence[str], week_index: np.ndarray) -> np.ndarray:
        """(series, days) price of each (store, item) series on each day; NaN when not on sale."""
        out = np.full((len(stores), len(week_index)), np.nan, np.float32)
        for i, pair in enumerate(zip(stores, items)):
            row = self.rows.get(pair)
            if row is not None:
                out[i] = self.table[row, week_index]
        return out


class M5(Adapter):
    """The three files of the M5 download in one folder; see the module docstring for the panel."""

    name = "m5"

    expects = (f"a folder holding sales_train_evaluation.csv (or sales_train_validation.csv), calendar.csv "
               f"and sell_prices.csv from the Kaggle M5 Forecasting - Accuracy competition ({DOWNLOAD}), "
               f"unzipped as downloaded")

    def files(self, path: Path) -> list[Path]:
        if not path.is_dir():
            raise SourceError(f"m5: {path} is a file; data.path is the folder holding it. Expected {self.expects}.")
        sales = next((f for f in (find(path, s) for s in SALES) if f is not None), None)
        found = {"sales_train_evaluation.csv (or sales_train_validation.csv)": sales,
                 "calendar.csv": find(path, CALENDAR), "sell_prices.csv": find(path, PRICES)}
        missing = [name for name, f in found.items() if f is None]
        if missing:
            raise SourceError(f"m5: {path} has no {' and no '.join(missing)}. Download the M5 files from {DOWNLOAD} "
                              f"and unzip them there. Expected {self.expects}.")
        for f in found.values():
            self._check_header(f)
        return sorted(found.values())  # type: ignore[arg-type]

    def _check_header(self, path: Path) -> list[str]:
        header = csv_header(path, self.name)
        role = _role(path)
        required = {"sales": SALES_IDS, "calendar": CALENDAR_COLUMNS, "prices": PRICE_COLUMNS}[role]
        missing = [c for c in required if c not in header]
        if role == "sales" and not any(DAY.fullmatch(c) for c in header):
            missing.append("d_1, d_2, ... (a column of daily sales per day)")
        if role == "calendar" and not any(SNAP.fullmatch(c) for c in header):
            missing.append("snap_CA, snap_TX, snap_WI (the SNAP flags per state)")
        if missing:
            expected = {"sales": ", ".join(SALES_IDS) + ", d_1, d_2, ...",
                        "calendar": ", ".join(CALENDAR_COLUMNS) + ", snap_CA, snap_TX, snap_WI",
                        "prices": ", ".join(PRICE_COLUMNS)}[role]
            raise SourceError(f"m5: {path} lacks the column(s) {short_list(missing)}; found {short_list(header)}. "
                              f"Its columns should be {expected}: download it again from {DOWNLOAD}.")
        return header

    def read(self, files: list[Path], cfg: "Config") -> Reading:
        import pyarrow as pa

        by_role = {_role(f): f for f in files}
        header = self._check_header(by_role["sales"])
        days = [c for c in header if DAY.fullmatch(c)]
        types = panel_types()
        wanted = set(wanted_columns(cfg.data))
        schema = pa.schema([(c, t) for c, t in types.items() if c in wanted])
        calendar = read_calendar(by_role["calendar"], days, by_role["sales"])
        prices = by_role["prices"] if {"price", "on_sale"} & wanted else None
        return Reading(schema, self._batches(by_role["sales"], header, days, calendar, prices, schema))

    def _batches(self, sales: Path, header: list[str], days: list[str], calendar: Calendar, prices_file: Path | None,
                 schema: "pa.Schema") -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        ids = [c for c in SALES_IDS if c != "id"]
        types = {c: pa.string() for c in ids} | {d: pa.int32() for d in days}
        columns = [*ids, *days]
        prices = read_prices(prices_file, calendar.weeks) if prices_file is not None else None
        advice = "Daily sales are whole numbers in every d_ column; download the file again from " + DOWNLOAD
        block_schema = pa.schema([(c, types[c]) for c in columns])
        for block in iter_csv(sales, self.name, header, columns, types, block_schema, {}, advice=advice):
            for start in range(0, block.num_rows, SERIES_PER_BATCH):
                series = block.slice(start, SERIES_PER_BATCH)
                yield melt(series, len(ids), calendar, prices, schema, sales)


def _role(path: Path) -> str:
    name = stem(path)
    return "sales" if name in SALES else "calendar" if name == CALENDAR else "prices"


def melt(series: "pa.RecordBatch", n_ids: int, calendar: Calendar, prices: Prices | None, schema: "pa.Schema",
         sales: Path) -> "pa.RecordBatch":
    """The panel rows of ``series`` (id columns, then one column per day): every day of each series in turn."""
    import pyarrow as pa

    k, n = series.num_rows, len(calendar.date)
    wanted = set(schema.names)
    each_series = pa.array(np.repeat(np.arange(k), n))
    out: dict[str, pa.Array] = {c: series.column(src).take(each_series) for c, src in IDS.items() if c in wanted}
    if "date" in wanted:
        out["date"] = pa.array(np.tile(calendar.date, k), pa.timestamp("ns"))
    if "units_sold" in wanted:
        out["units_sold"] = pa.array(units(series, n_ids, sales).reshape(-1))
    if prices is not None:
        price = prices.of(series.column("store_id").to_pylist(), series.column("item_id").to_pylist(),
                          calendar.week_index)
        out["price"] = pa.array(price.reshape(-1), pa.float32(), from_pandas=True)  # NaN -> null
        out["on_sale"] = pa.array((~np.isnan(price)).astype(np.int8).reshape(-1))
    if "holiday" in wanted:
        out["holiday"] = pa.array(np.tile(calendar.holiday, k))
    if "event_type" in wanted:
        out["event_type"] = pa.array(np.tile(calendar.event_type, k), pa.string())
    if "snap" in wanted:
        states = series.column("state_id").to_pylist()
        out["snap"] = pa.array(calendar.snap_of(states).reshape(-1))
    return pa.RecordBatch.from_arrays([out[f.name] for f in schema], schema=schema)


def units(series: "pa.RecordBatch", n_ids: int, sales: Path) -> np.ndarray:
    """(series, days) int32 unit sales; an empty cell is an error naming its day."""
    days = series.schema.names[n_ids:]
    columns = series.columns[n_ids:]
    for day, column in zip(days, columns):
        if column.null_count:
            raise SourceError(f"m5: {sales} has an empty value in column {day!r}: daily sales are whole numbers "
                              f"on every day; download the file again from {DOWNLOAD}")
    return np.stack([c.to_numpy() for c in columns], axis=1).astype(np.int32, copy=False)


def read_calendar(path: Path, days: list[str], sales: Path) -> Calendar:
    """The calendar rows of ``days`` (the sales file's d_ columns), in that order."""
    import pyarrow as pa

    header = csv_header(path, "m5")
    snaps = [c for c in header if SNAP.fullmatch(c)]
    types = {"date": pa.date32(), "wm_yr_wk": pa.int64(), "d": pa.string(), **{c: pa.string() for c in
             CALENDAR_COLUMNS[3:]}, **{c: pa.int8() for c in snaps}}
    columns = [*CALENDAR_COLUMNS, *snaps]
    schema = pa.schema([(c, types[c]) for c in columns])
    advice = f"Dates are YYYY-MM-DD, weeks and SNAP flags whole numbers; download the file again from {DOWNLOAD}"
    table = pa.Table.from_batches(list(iter_csv(path, "m5", header, columns, types, schema, {}, advice=advice)),
                                  schema)
    frame = table.to_pandas(date_as_object=False)
    position = {d: i for i, d in enumerate(frame["d"])}
    missing = [d for d in days if d not in position]
    if missing:
        raise SourceError(f"m5: {path} has no row for {short_list(missing)} of {sales.name}; use the calendar.csv "
                          f"of the same download ({DOWNLOAD})")
    frame = frame.iloc[[position[d] for d in days]]
    empty = [c for c in ("date", "wm_yr_wk") if frame[c].isna().any()]
    if empty:
        raise SourceError(f"m5: {path} has empty {' and '.join(empty)} values on days of {sales.name}; every day "
                          f"needs a date and a week: download the file again from {DOWNLOAD}")
    named = [frame[c].fillna("").to_numpy(object) != "" for c in ("event_name_1", "event_name_2")]
    event_type = frame["event_type_1"].to_numpy(object)
    week = frame["wm_yr_wk"].to_numpy()
    weeks = np.unique(week)
    return Calendar(
        date=frame["date"].to_numpy("datetime64[ns]"),
        week_index=np.searchsorted(weeks, week),
        weeks=weeks,
        holiday=(named[0] | named[1]).astype(np.int8),
        event_type=np.array([t if isinstance(t, str) and t else None for t in event_type], object),
        snap={SNAP.fullmatch(c).group(1): frame[c].fillna(0).to_numpy(np.int8) for c in snaps},
        source=path,
    )


def read_prices(path: Path, weeks: np.ndarray) -> Prices:
    """The prices of the weeks of the sales days, streamed from ``path`` block by block into the table."""
    import pyarrow as pa

    header = csv_header(path, "m5")
    types = {"store_id": pa.string(), "item_id": pa.string(), "wm_yr_wk": pa.int64(), "sell_price": pa.float32()}
    schema = pa.schema([(c, types[c]) for c in PRICE_COLUMNS])
    advice = f"Weeks are whole numbers and prices numbers; download the file again from {DOWNLOAD}"
    rows: dict[tuple[str, str], int] = {}
    table = np.full((0, len(weeks)), np.nan, np.float32)
    for batch in iter_csv(path, "m5", header, list(PRICE_COLUMNS), types, schema, {}, advice=advice):
        week = batch.column(2).to_numpy(zero_copy_only=False)
        column = np.minimum(np.searchsorted(weeks, week), len(weeks) - 1)
        known = weeks[column] == week  # weeks outside the sales days are not needed
        row = _pair_rows(batch.column(0), batch.column(1), rows)
        if len(rows) > len(table):  # grow by doubling: a few copies, whatever the number of pairs
            more = max(len(rows) - len(table), len(table))
            table = np.concatenate([table, np.full((more, len(weeks)), np.nan, np.float32)])
        table[row[known], column[known]] = batch.column(3).to_numpy(zero_copy_only=False)[known]
    return Prices(rows=rows, table=table[: len(rows)].copy())


def _pair_rows(stores: "pa.Array", items: "pa.Array", rows: dict[tuple[str, str], int]) -> np.ndarray:
    """The table row of each (store, item) of a batch; a new pair gets the next free row in ``rows``."""
    store, item = stores.dictionary_encode(), items.dictionary_encode()
    n_items = len(item.dictionary)
    local = (store.indices.to_numpy(zero_copy_only=False).astype(np.int64) * n_items
             + item.indices.to_numpy(zero_copy_only=False))
    pairs, inverse = np.unique(local, return_inverse=True)
    store_ids, item_ids = store.dictionary.to_pylist(), item.dictionary.to_pylist()
    found = [rows.setdefault((store_ids[p // n_items], item_ids[p % n_items]), len(rows)) for p in pairs.tolist()]
    return np.array(found, np.int64)[inverse]
