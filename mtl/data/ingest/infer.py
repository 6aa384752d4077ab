"""What a user's file holds, guessed for `mtl init --from`: each column's role, and why.

Pure: a sample of the rows in, one decision per column out (mtl/scaffold.py turns them into a
params file). The rules, in order:

- a column named like the split (``split``) holding train / validation / test: the split;
- a column named in ``--labels``: a label (binary when 0/1, else regression);
- a timestamp (a datetime type, or text that parses as dates): the time column, the first one;
- a list column whose elements are values of a categorical column: that column's history;
- 0/1 or true/false: a label when no ``--labels`` were given (said so: pass --labels when some
  are features), else a categorical feature;
- long free text (spaces, 20+ characters on average, mostly distinct): text;
- text unique to every row (an event id), a constant or an all-null column: left out;
- text, integers named like ids (``*_id``, ``*id``, ``*_key``, ``*_code``) or with at most
  ``CATEGORY_MAX`` values: categorical; any other number: numeric (skewed non-negative ones
  log-scaled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CATEGORY_MAX = 50  # integer columns with at most this many values are categories (hour, weekday...)
TEXT_MIN_CHARS = 20
SKEW_LOG = 2.0  # a non-negative numeric column this skewed is log-scaled
SPLIT_VALUES = {"train", "validation", "val", "test"}
ID_NAME = re.compile(r"(^id$|_id$|id$|_key$|_code$|^uid$)", re.IGNORECASE)
TIME_NAME = re.compile(r"(time|date|^ts$|_ts$|timestamp|day)", re.IGNORECASE)


class InferenceError(ValueError):
    """The file cannot be described without the user's help; the message says which flag to pass."""


@dataclass(frozen=True)
class Column:
    """One column's role: categorical | numeric | label | time | split | sequence | text | ignored."""

    name: str
    role: str
    reason: str
    extra: dict = field(default_factory=dict)  # label: {"type"}; sequence: {"vocabulary"}; numeric: {"log"}


def _binary(values: pd.Series) -> bool:
    v = values.dropna()
    if v.empty:
        return False
    if pd.api.types.is_bool_dtype(v):
        return True
    if not pd.api.types.is_numeric_dtype(v):
        return False
    return set(np.unique(v.to_numpy())) <= {0, 1} and v.nunique() == 2


def _is_list(values: pd.Series) -> bool:
    v = values.dropna()
    return not v.empty and isinstance(v.iloc[0], (list, tuple, np.ndarray))


def _as_time(values: pd.Series, name: str) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if values.dtype != object or not TIME_NAME.search(name):
        return False
    v = values.dropna().astype(str).head(1000)
    parsed = pd.to_datetime(v, errors="coerce", format="mixed")
    return not v.empty and parsed.notna().mean() >= 0.95


def _is_text(values: pd.Series) -> bool:
    v = values.dropna().astype(str)
    if v.empty:
        return False
    return (v.str.len().mean() >= TEXT_MIN_CHARS and v.str.contains(" ").mean() >= 0.5
            and v.nunique() >= 0.2 * len(v))


def _skewed(values: pd.Series) -> bool:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(v) > 10 and v.min() >= 0 and v.skew() > SKEW_LOG)


def _history_of(values: pd.Series, categorical: dict[str, set]) -> str | None:
    """The categorical column most of the list's elements are values of (its vocabulary)."""
    elements = pd.Series([e for row in values.dropna().head(2000) for e in row]).astype(str)
    if elements.empty:
        return None
    best = max(categorical, key=lambda c: elements.isin(categorical[c]).mean(), default=None)
    return best if best is not None and elements.isin(categorical[best]).mean() >= 0.5 else None


def _encoded_ids(v: pd.Series) -> bool:
    """Integers numbered 1, 2, 3, ... in the order they first appear (0, wherever it first appears,
    being the usual code for unknown), with many values: the signature of ids encoded by a label
    encoder (Ali-CCP's fields, Kaggle-style logs), whose names say nothing. A counter (a position
    in a session, a visit number) also first appears in order, but its small values are the most
    frequent; ids' frequencies do not fall with the value."""
    if not pd.api.types.is_integer_dtype(v) or v.nunique() <= CATEGORY_MAX:
        return False
    first = pd.unique(v.to_numpy())
    first = first[first != 0]
    if not np.array_equal(first, np.arange(1, len(first) + 1)):
        return False
    counts = v.value_counts().sort_index()
    falling = pd.Series(counts.index).corr(pd.Series(counts.to_numpy()), method="spearman")
    return not falling < -0.8


def _scalar(name: str, values: pd.Series, rows: int, labels_given: bool) -> Column:
    """The role of a column that is no label, time, split or list."""
    v = values.dropna()
    if v.empty:
        return Column(name, "ignored", "every value is null")
    if v.nunique() == 1:
        return Column(name, "ignored", f"one value only ({getattr(v.iloc[0], 'item', lambda: v.iloc[0])()!r}): "
                      f"nothing to learn from")
    if _binary(values):
        if not labels_given:
            return Column(name, "label", "0/1 values: a label (if it is a feature, name the labels with --labels)",
                          {"type": "binary"})
        return Column(name, "categorical", "0/1 values, not named in --labels: a flag feature")
    if pd.api.types.is_numeric_dtype(v):
        if pd.api.types.is_integer_dtype(v) and ID_NAME.search(name):
            return Column(name, "categorical", "integers named like an id")
        if _encoded_ids(v):
            return Column(name, "categorical", f"{v.nunique()} integers numbered in order of first appearance: "
                          f"encoded ids")
        if pd.api.types.is_integer_dtype(v) and v.nunique() <= CATEGORY_MAX:
            return Column(name, "categorical", f"integers with {v.nunique()} values: a category")
        if _skewed(v):
            return Column(name, "numeric", "numbers, non-negative and skewed: log-scaled", {"log": True})
        return Column(name, "numeric", "numbers")
    if _is_text(v):
        return Column(name, "text", "free text (spaces, long, mostly distinct)")
    if v.nunique() == len(v) and rows >= 100:
        return Column(name, "ignored", "unique to every row: an event id, not a feature")
    return Column(name, "categorical", f"text with {v.nunique():,} values")


def infer(sample: pd.DataFrame, labels: list[str] | None = None, split_column: str = "split") -> list[Column]:
    """One decision per column of ``sample`` (rows read from the user's files)."""
    missing = [c for c in labels or [] if c not in sample.columns]
    if missing:
        raise InferenceError(f"--labels names {missing}, which the data does not have; its columns are "
                             f"{list(sample.columns)}")
    rows, out, time_found = len(sample), {}, None
    for name in sample.columns:
        values = sample[name]
        if name == split_column and set(values.dropna().astype(str).str.lower().unique()) <= SPLIT_VALUES:
            out[name] = Column(name, "split", "train / validation / test values: the split to use")
        elif labels and name in labels:
            kind = "binary" if _binary(values) else "regression"
            if kind == "regression" and not pd.api.types.is_numeric_dtype(values.dropna()):
                raise InferenceError(f"--labels names {name!r}, but its values are not numbers or 0/1 "
                                     f"(e.g. {values.dropna().iloc[0]!r}): a label must be one of those")
            out[name] = Column(name, "label", f"named in --labels: {kind}", {"type": kind})
        elif _as_time(values, name):
            role, why = ("time", "timestamps: the time column (split by days, newest last)") if time_found is None \
                else ("ignored", f"a second timestamp ({time_found} is the time column)")
            time_found = time_found or name
            out[name] = Column(name, role, why)
        elif not _is_list(values):
            out[name] = _scalar(name, values, rows, labels is not None)
    categorical = {c.name: set(sample[c.name].dropna().astype(str).unique())
                   for c in out.values() if c.role == "categorical"}
    for name in sample.columns:
        if name not in out:
            vocabulary = _history_of(sample[name], categorical)
            out[name] = (Column(name, "sequence", f"lists of {vocabulary} values: a history", {"vocabulary": vocabulary})
                         if vocabulary else Column(name, "ignored", "lists whose elements match no categorical column"))
    decided = [out[c] for c in sample.columns]
    if not any(c.role == "label" for c in decided):
        raise InferenceError("no 0/1 column to take for a label: name the label columns with --labels a,b "
                             "(0/1 columns become binary tasks, numbers regression tasks)")
    if not any(c.role in ("categorical", "numeric") for c in decided):
        raise InferenceError("no feature column left besides the labels: the model needs at least one "
                             "categorical or numeric column")
    return decided


def implied_by(sample: pd.DataFrame, labels: list[Column]) -> dict[str, str]:
    """Funnel rules between binary labels: b implies a when b is 1 only where a is 1 and b is
    rarer (a purchase needs a click); the nearest such a, the rarest."""
    binary = [c.name for c in labels if c.extra.get("type") == "binary"]
    frame = sample[binary].apply(pd.to_numeric, errors="coerce").fillna(0)
    rate = frame.mean()
    out = {}
    for b in binary:
        parents = [a for a in binary if a != b and rate[a] > rate[b] and bool((frame[b] <= frame[a]).all())]
        if parents:
            out[b] = min(parents, key=lambda a: rate[a])
    return out


def condition_of(sample: pd.DataFrame, label: str, binary: list[str]) -> str | None:
    """The binary label a regression label exists under: non-null exactly where it is 1 (dwell
    time on clicks); None when the label is never null."""
    present = sample[label].notna()
    if present.all():
        return None
    for a in binary:
        if bool((present == (pd.to_numeric(sample[a], errors="coerce") == 1)).all()):
            return a
    return None
