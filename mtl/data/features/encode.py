"""Raw rows to model inputs with a fitted Transform: ``apply`` and the per-kind encoders it uses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.data.columns import condition_mask, list_column
from mtl.data.features.transform import OOV, Arrays, Transform

# Texts a loaded transform keeps encoded beyond its saved table (serving's unseen titles).
MAX_ENCODED_TEXTS = 100_000


def _stable_hash(values: np.ndarray) -> np.ndarray:
    # pandas' hash_array is SipHash with a fixed key: the same value hashes the same in every
    # process and on every machine, unlike Python's salted hash().
    return pd.util.hash_array(values, categorize=False)


def _as_kind(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Values converted to the vocabulary's kind, and a mask of rows that have one."""
    if kind == "int":
        if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(series.dtype, pd.CategoricalDtype):
            return series.to_numpy(dtype=np.int64), np.ones(len(series), dtype=bool)
        # Ids arriving as floats or strings ("123") at serving time still find their slot.
        x = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(x) & (np.floor(x) == x)
        return np.where(ok, x, 0).astype(np.int64), ok
    ok = series.notna().to_numpy()
    return series.astype(object).where(ok, "").astype(str).to_numpy(dtype=object), ok


def encode_categorical(series: pd.Series, t: Transform, column: str) -> np.ndarray:
    """Embedding index of each value: 1.. for the vocabulary, then hash buckets; 0 for OOV/null."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Dictionary-encoded input (how preprocessing reads strings): encode the few distinct
        # values once, then gather by code.
        cats = encode_categorical(pd.Series(series.cat.categories), t, column)
        codes = series.cat.codes.to_numpy()
        return np.where(codes >= 0, cats[np.maximum(codes, 0)], OOV).astype(np.int32)
    spec = t.categorical[column]
    values, ok = _as_kind(series, spec["kind"])
    idx = t.lookup(column).get_indexer(values) + 1  # -1 (not found) becomes OOV
    idx[~ok] = OOV
    if spec["hash_buckets"]:
        unseen = (idx == OOV) & ok
        if unseen.any():
            idx[unseen] = 1 + len(spec["values"]) + (_stable_hash(values[unseen]) % np.uint64(spec["hash_buckets"])).astype(np.int64)
    return idx.astype(np.int32)


def encode_sequence(series: pd.Series, t: Transform, column: str) -> np.ndarray:
    """(rows, max_length) int32 indices into the shared column's vocabulary, newest element
    first; -1 where a history is shorter (padding), OOV for an element the vocabulary lacks."""
    spec = t.sequence[column]
    length = spec["max_length"]
    arr = list_column(series)
    n = len(arr)
    offsets = arr.offsets.to_numpy().astype(np.int64)
    starts, ends = offsets[:-1], offsets[1:]
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    keep = np.where(valid, np.minimum(ends - starts, length), 0)
    flat = arr.values.to_pandas()
    codes = encode_categorical(flat, t, spec["shares"]) if len(flat) else np.zeros(0, np.int32)
    out = np.full((n, length), -1, dtype=np.int32)
    rows = np.repeat(np.arange(n), keep)
    pos = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)  # 0 = the newest
    out[rows, pos] = codes[np.repeat(ends, keep) - 1 - pos]
    return out


def encode_text(series: pd.Series, t: Transform, column: str, encode_unseen: bool = True) -> np.ndarray:
    """Row of each value in the transform's text table (0 for null). A text never seen is encoded
    now with the transform's encoder and appended to the table in memory."""
    spec = t.text["columns"][column]
    ok = series.notna().to_numpy()
    values = series.astype(object).where(ok, "").astype(str).to_numpy(dtype=object)
    idx = t.text_lookup(column).get_indexer(values)
    out = np.where(idx >= 0, idx + spec["offset"], 0).astype(np.int64)
    unseen = ok & (idx < 0)
    if unseen.any():
        new = [v for v in pd.unique(values[unseen]) if (column, v) not in t._extra]
        if new and not encode_unseen:
            raise KeyError(f"{len(new)} text(s) of {column!r} are not in the transform's table")
        if new:
            from mtl.data.features import text as text_encoders

            vectors = text_encoders.encode(new, t.text["encoder"]["name"])
            start = t.text_rows()
            for i, (v, vec) in enumerate(zip(new, vectors)):
                t._extra[(column, v)] = (start + i, vec.astype(np.float32))
            t._table = None
        out[unseen] = [t._extra[(column, v)][0] for v in values[unseen]]
    out[~ok] = 0
    return out.astype(np.int32)


def numeric_values(series: pd.Series, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(impute -> clip -> log1p)-ed values and the missing mask, before scaling."""
    x = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    missing = ~np.isfinite(x)
    x = np.where(missing, spec["impute"], x)
    return shape_numeric(x, spec), missing


def shape_numeric(x: np.ndarray, spec: dict) -> np.ndarray:
    if spec["clip"] is not None:
        lo, hi = spec["clip"]
        x = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    if spec["log"]:
        x = np.log1p(np.maximum(x, 0.0))
    return x


def apply(df: pd.DataFrame, t: Transform, with_labels: bool = True) -> Arrays:
    """Raw rows to model inputs. The single code path for training, evaluation and serving."""
    n = len(df)
    cat_cols: list[np.ndarray] = [encode_categorical(df[c], t, c) for c in t.categorical]
    num_cols: list[np.ndarray] = []
    indicators: list[np.ndarray] = []
    for col, spec in t.numeric.items():
        x, missing = numeric_values(df[col], spec)
        if spec["scale"] == "bucketize":
            cat_cols.append((np.searchsorted(spec["boundaries"], x, side="right") + 1).astype(np.int32))
        elif spec["scale"] == "standardize":
            num_cols.append((x - spec["mean"]) / spec["std"])
        else:
            num_cols.append(x)
        if spec["missing_indicator"]:
            indicators.append(missing.astype(np.float64))
    cat = np.stack(cat_cols, axis=1) if cat_cols else np.zeros((n, 0), np.int32)
    num_all = num_cols + indicators
    num = np.stack(num_all, axis=1).astype(np.float32) if num_all else np.zeros((n, 0), np.float32)
    seq = (np.stack([encode_sequence(df[c], t, c) for c in t.sequence], axis=1) if t.sequence
           else np.zeros((n, 0, 0), np.int32))
    text_cols = t.text.get("columns", {})
    if len(t._extra) > MAX_ENCODED_TEXTS:
        # A long-running model server sees endless new titles: forget those encoded for earlier
        # calls (1.5 KB each) rather than grow without bound. Done before any column is encoded,
        # so the rows this call assigns stay valid until its prediction.
        t._extra.clear()
        t._table = None
    text = (np.stack([encode_text(df[c], t, c) for c in text_cols], axis=1) if text_cols
            else np.zeros((n, 0), np.int32))
    labels = np.zeros((n, len(t.tasks)), dtype=np.float32)
    mask = np.zeros((n, len(t.tasks)), dtype=bool)
    if with_labels:
        for j, task in enumerate(t.tasks):
            y = pd.to_numeric(df[task.label], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            m = condition_mask(df, task) & ~np.isnan(y)
            if task.name in t.targets:
                scale = t.targets[task.name]
                y = (y - scale["mean"]) / scale["std"]
            labels[:, j] = np.where(m, y, 0.0)
            mask[:, j] = m
    return Arrays(np.ascontiguousarray(cat), np.ascontiguousarray(num), labels, mask, seq, text)


# ---------------------------------------------------------------------------------------------
# fit: streamed statistics of the training split
