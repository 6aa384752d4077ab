"""Custom Great Expectations expectations the suite uses where GX Core's own are too slow.

Imported only by mtl.data.validation when it builds a suite: defining the classes registers them
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
from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)


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
    condition_domain_keys = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return pd.Series(~duplicated_rows(column_list), index=column_list.index)


class ExpectImpressionKeysToBeUnique(ExpectCompoundColumnsToBeUnique):
    """No two rows share the values of ``column_list`` (an impression key)."""

    map_metric = "compound_columns.unique_by_sorted_hash"
