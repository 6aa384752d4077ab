"""Reading columns of the raw log the way every data layer needs: a task's condition, list
(history) columns whatever their arrow or pandas form. Validation, drift, leakage, the feature
transform and evaluation share these, so none of them imports another for a helper."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mtl.config import TaskConfig

def condition_mask(df: pd.DataFrame, task: TaskConfig) -> np.ndarray:
    cond = task.condition
    if cond is None:
        return np.ones(len(df), dtype=bool)
    return (df[cond.column] == cond.equals).to_numpy(dtype=bool, na_value=False)


def keep_lists(arrow_type):
    """``types_mapper`` for Arrow's to_pandas: list columns (histories) stay Arrow lists. As numpy
    arrays, one Python object per row, a million of them cost seconds to make and to read back."""
    import pyarrow as pa

    return pd.ArrowDtype(arrow_type) if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) else None


def list_column(series: pd.Series):
    """A column of lists as a pyarrow ListArray, whatever form it arrives in: Arrow lists (parquet
    read by pandas), Python lists or numpy arrays (a served DataFrame), JSON text ("[3, 17]", a
    CSV file); nulls are empty histories."""
    import pyarrow as pa

    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_list(series.dtype.pyarrow_dtype):
        arr = pa.array(series)  # the Arrow array pandas holds (one array, whatever its chunks)
    else:
        values = series.tolist()
        if any(isinstance(v, str) for v in values):
            values = [json.loads(v) if isinstance(v, str) else v for v in values]
        try:
            arr = pa.array(values, from_pandas=True)  # numpy arrays convert as they are
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            # Mixed element types (numpy and pandas timestamps, ints and floats): let pandas
            # find the common type of all the elements, then cut them back into lists.
            null = [v is None or (isinstance(v, float) and np.isnan(v)) for v in values]
            lengths = [0 if n else len(v) for v, n in zip(values, null)]
            child = pa.array(pd.Series([x for v, n in zip(values, null) if not n for x in v]), from_pandas=True)
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            arr = pa.ListArray.from_arrays(offsets, child, mask=pa.array(null))
        if pa.types.is_null(arr.type):
            arr = pa.array(values, type=pa.list_(pa.int64()), from_pandas=True)
    if isinstance(arr, pa.LargeListArray):
        arr = arr.cast(pa.list_(arr.type.value_type))
    if not pa.types.is_list(arr.type):
        raise ValueError(f"column {series.name!r} holds {arr.type}, not lists: a history column holds one list "
                         "per row (oldest element first)")
    return arr


def list_lengths(series: pd.Series) -> np.ndarray:
    """Elements per row of a list column (0 for a null history)."""
    arr = list_column(series)
    n = np.diff(arr.offsets.to_numpy()).astype(np.int64)
    n[np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return n
