"""Custom Great Expectations expectations: where GX Core's own are too slow, for history
columns and for daily panels, which GX Core has nothing for.

Imported only by mtl.data.contracts.validation when it builds a suite: defining the classes registers them
with GX, which must not happen when Airflow merely imports ``mtl``.

``ExpectImpressionKeysToBeUnique`` is GX's ExpectCompoundColumnsToBeUnique (same arguments,
result and Data Docs) with a faster pandas metric. GX's hashes every key column into one table
(pandas' DataFrame.duplicated): about 5 s for a key with a timestamp on 10M rows, a quarter of
the validation budget. Here each row's key is hashed to one 64-bit number, the numbers are
sorted, and only rows whose number repeats are compared exactly, so a hash collision can never
report a false duplicate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.core.expect_compound_columns_to_be_unique import (
    ExpectCompoundColumnsToBeUnique,
)
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
)
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

from mtl.data.columns import list_column, list_lengths

# What a multicolumn map metric's domain is made of (as GX Core's own compound-columns metric).
MULTICOLUMN_DOMAIN = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")


def duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """True for every row whose values (all columns of ``frame``) occur in another row too."""
    if len(frame) < 2:
        return np.zeros(len(frame), dtype=bool)
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    ordered = np.sort(hashes)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    out = np.zeros(len(frame), dtype=bool)
    if len(repeated):
        candidates = np.flatnonzero(np.isin(hashes, repeated))
        out[candidates] = frame.iloc[candidates].duplicated(keep=False).to_numpy()
    return out


class CompoundKeysUniqueBySortedHash(MulticolumnMapMetricProvider):
    condition_metric_name = "compound_columns.unique_by_sorted_hash"
    condition_domain_keys = MULTICOLUMN_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return pd.Series(~duplicated_rows(column_list), index=column_list.index)


class ExpectImpressionKeysToBeUnique(ExpectCompoundColumnsToBeUnique):
    """No two rows share the values of ``column_list`` (an impression key)."""

    map_metric = "compound_columns.unique_by_sorted_hash"


# --------------------------------------------------------------------------- history columns
# A history column holds one list per row (data.schema.sequence). Its values arrive as Arrow
# lists, numpy arrays, Python lists or JSON text (a CSV file): mtl.data.columns.list_column
# reads them all, vectorised over the column.




def _is_list(value) -> bool:
    if isinstance(value, (list, tuple, np.ndarray)):
        return True
    if isinstance(value, str):
        import json

        try:
            return isinstance(json.loads(value), list)
        except ValueError:
            return False
    return False


class ColumnValuesAreLists(ColumnMapMetricProvider):
    condition_metric_name = "column_values.mtl_are_lists"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        if isinstance(column.dtype, pd.ArrowDtype) and "list" in str(column.dtype):
            return pd.Series(True, index=column.index)
        return column.map(_is_list).astype(bool)


class ExpectColumnValuesToBeLists(ColumnMapExpectation):
    """Every non-null value of the column is a list (a user's history, oldest element first)."""

    map_metric = "column_values.mtl_are_lists"


class SequencesAligned(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.mtl_sequences_aligned"
    condition_domain_keys = MULTICOLUMN_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        lengths = np.stack([list_lengths(column_list[c]) for c in column_list.columns])
        return pd.Series((lengths == lengths[0]).all(axis=0), index=column_list.index)


class ExpectSequencesToBeAligned(MulticolumnMapExpectation):
    """On every row the history columns hold as many elements: element i of each describes the
    same event (an item and its category), so they must line up."""

    map_metric = "multicolumn_values.mtl_sequences_aligned"


class HistoryBeforeTime(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.mtl_history_before_time"
    condition_domain_keys = MULTICOLUMN_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        import pyarrow as pa

        history, time = column_list.columns
        arr = list_column(column_list[history])
        n = list_lengths(column_list[history])
        offsets = arr.offsets.to_numpy()
        # The child array may run past this (sliced) column's last row: cut it there.
        stamps = arr.values.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)[: offsets[-1]]
        latest = np.full(len(n), np.iinfo(np.int64).min)
        has = n > 0
        if has.any():
            latest[has] = np.maximum.reduceat(stamps, offsets[:-1][has])
        at = pd.to_datetime(column_list[time]).to_numpy(dtype="datetime64[us]").astype(np.int64)
        return pd.Series(~has | (latest < at), index=column_list.index)


class ExpectHistoryToPrecedeTime(MulticolumnMapExpectation):
    """Every element of a row's history (column_list[0], times) is strictly earlier than the row's
    own time (column_list[1]): a history holding the impression itself or its future is a leak."""

    map_metric = "multicolumn_values.mtl_history_before_time"


# --------------------------------------------------------------------------- daily panels
# A panel (data.panel) has one row per series and day; a series must have every day from its
# first to its last (a missing day would shift every lag after it).


class SeriesDaysContiguous(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.mtl_series_days_contiguous"
    condition_domain_keys = MULTICOLUMN_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        *series, time = column_list.columns
        day = pd.to_datetime(column_list[time]).dt.normalize()
        groups = day.groupby([column_list[c] for c in series], dropna=False, sort=False)
        span = (groups.transform("max") - groups.transform("min")).dt.days + 1
        return pd.Series((groups.transform("nunique") == span).to_numpy(), index=column_list.index)


class ExpectSeriesDaysToBeContiguous(MulticolumnMapExpectation):
    """Every series (column_list[:-1]) has a row on every day (column_list[-1]) from its first to
    its last: rows of a series with a missing day are the unexpected ones."""

    map_metric = "multicolumn_values.mtl_series_days_contiguous"
