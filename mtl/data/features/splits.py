"""Train / validation / test assignment that works chunk by chunk.

Every rule here depends only on a row's own values and its global row number, never on which
chunk it arrived in, so a streamed pass over 100M rows assigns exactly what one in-memory pass
would, and the two passes of preprocessing (fit, then apply) agree row for row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import DataConfig

SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2
COLUMN_VALUES = {"train": TRAIN, "validation": VALIDATION, "val": VALIDATION, "valid": VALIDATION, "test": TEST}


class SplitError(ValueError):
    """The data cannot be split as configured; the message says how to fix it."""


def uniform(rows: np.ndarray, seed: int) -> np.ndarray:
    """A reproducible U[0, 1) per global row number (splitmix64), independent of chunking."""
    x = rows.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15) % (1 << 64))
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def to_naive_ns(values: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(values)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy(dtype="datetime64[ns]")


@dataclass(frozen=True)
class SplitPlan:
    method: str  # column | time | random
    column: str | None = None
    validation_start: np.datetime64 | None = None
    test_start: np.datetime64 | None = None
    carve_validation: bool = False  # the split column has no validation rows: take some of train
    validation: float = 0.1
    test: float = 0.1
    seed: int = 42
    info: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Raw columns the plan reads."""
        return [self.column] if self.column else []

    def assign(self, chunk: pd.DataFrame, first_row: int) -> np.ndarray:
        """Split code (TRAIN / VALIDATION / TEST) of each row of a chunk starting at ``first_row``."""
        n = len(chunk)
        if self.method == "time":
            t = to_naive_ns(chunk[self.column])
            out = np.full(n, TRAIN, dtype=np.int8)
            out[t >= self.validation_start] = VALIDATION
            out[t >= self.test_start] = TEST
            return out
        if self.method == "column":
            out = _column_codes(chunk[self.column])
            if self.carve_validation:
                u = uniform(np.arange(first_row, first_row + n), self.seed)
                out[(out == TRAIN) & (u < self.validation)] = VALIDATION
            return out
        u = uniform(np.arange(first_row, first_row + n), self.seed)
        out = np.full(n, TRAIN, dtype=np.int8)
        out[u < self.test + self.validation] = VALIDATION
        out[u < self.test] = TEST
        return out


def _column_codes(values: pd.Series) -> np.ndarray:
    lowered = values.astype("string").str.strip().str.lower()
    codes = lowered.map(COLUMN_VALUES)
    if codes.isna().any():
        bad = sorted(set(values[codes.isna()].astype(str).unique()))[:5]
        raise SplitError(
            f"split column {values.name!r} has value(s) {bad}; expected train, validation (or val) or test"
        )
    return codes.to_numpy(dtype=np.int8)


def plan(raw_file: Path, data: DataConfig) -> SplitPlan:
    """Choose the split for ``raw_file`` (reads only the one column it needs)."""
    import pyarrow.parquet as pq

    sc = data.split
    names = pq.ParquetFile(raw_file).schema_arrow.names
    method = sc.method
    if method == "auto":
        method = "column" if sc.column in names else ("time" if data.schema.time else "random")
    common = {"validation": sc.validation, "test": sc.test, "seed": sc.seed}
    if method == "random":
        return SplitPlan("random", info={"method": "random", "seed": sc.seed, "validation": sc.validation,
                                         "test": sc.test}, **common)
    if method == "column":
        if sc.column not in names:
            raise SplitError(f"data.split.method is 'column' but the raw data has no column {sc.column!r} "
                             f"(columns: {names}); set data.split.column or another method")
        present = set()
        for batch in pq.ParquetFile(raw_file, pre_buffer=False).iter_batches(columns=[sc.column], batch_size=1 << 22):
            present |= set(_column_codes(batch.to_pandas(ignore_metadata=True)[sc.column]).tolist())
        carve = VALIDATION not in present
        info = {"method": "column", "column": sc.column, "validation_carved_from_train": carve}
        if carve:
            info |= {"validation": sc.validation, "seed": sc.seed}
        return SplitPlan("column", sc.column, carve_validation=carve, info=info, **common)
    time_col = data.schema.time
    if time_col is None:
        raise SplitError("data.split.method is 'time' but data.schema.time is not set")
    lo, hi = None, None
    for batch in pq.ParquetFile(raw_file, pre_buffer=False).iter_batches(columns=[time_col], batch_size=1 << 22):
        t = to_naive_ns(batch.to_pandas(ignore_metadata=True)[time_col])
        t = t[~np.isnat(t)]
        if len(t):
            lo = t.min() if lo is None else min(lo, t.min())
            hi = t.max() if hi is None else max(hi, t.max())
    if hi is None:
        raise SplitError(f"time column {time_col!r} has no values; cannot split by day")
    last_day = np.datetime64(pd.Timestamp(hi).floor("D"), "ns")
    test_start = last_day - np.timedelta64(sc.test_days - 1, "D")
    validation_start = test_start - np.timedelta64(sc.validation_days, "D")
    if lo >= validation_start:
        days = int((last_day - np.datetime64(pd.Timestamp(lo).floor("D"), "ns")) // np.timedelta64(1, "D")) + 1
        raise SplitError(
            f"the data spans {days} day(s) of {time_col!r}, not enough for {sc.validation_days} validation and "
            f"{sc.test_days} test day(s) plus training days; lower data.split.validation_days/test_days "
            f"or use data.split.method: random"
        )
    info = {
        "method": "time", "column": time_col,
        "train": [str(pd.Timestamp(lo)), str(pd.Timestamp(validation_start))],
        "validation": [str(pd.Timestamp(validation_start)), str(pd.Timestamp(test_start))],
        "test": [str(pd.Timestamp(test_start)), str(pd.Timestamp(hi))],
    }
    return SplitPlan("time", time_col, validation_start, test_start, info=info, **common)
