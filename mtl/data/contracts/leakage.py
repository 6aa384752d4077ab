"""The label-leak check of validation: a feature that alone predicts a label almost perfectly.

A near-copy of a label among the features (the label itself under another name, or a column
only known after the outcome, like an order id only purchases have) yields test AUCs near 1.0
that no served model will ever reach; it is the most common silent bug of multi-task
recommenders. Each feature is scored alone against each task's label on a sample of rows:
categorical values through a target encoding fitted on one half of the rows and scored on the
other (so ids that merely memorise a few rows do not trip it), numeric values as they are, with
missing values below every observed one (so "present only for purchases" is caught too).
Binary tasks are scored by AUC (oriented, so 1.0 is a perfect copy either way round), regression
tasks by the absolute correlation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mtl.data.columns import condition_mask
from mtl.stats import rank_auc

if TYPE_CHECKING:
    from mtl.config import Config

MIN_ROWS = 20  # fewer labelled rows than this: no score


@dataclass(frozen=True)
class Leak:
    feature: str
    task: str
    score: float  # AUC (binary tasks, oriented so 1.0 is a perfect copy) or |correlation|
    metric: str = "AUC"

    def describe(self, threshold: float) -> str:
        return (f"feature '{self.feature}' alone predicts task '{self.task}' with {self.metric} {self.score:.4f} "
                f"(validation.leak_threshold {threshold}): it is a copy of the label or only known after the "
                f"outcome; remove it from data.schema, or raise validation.leak_threshold if it is genuinely "
                f"that predictive")


def _target_encoding_score(codes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Out-of-fold target encoding: means learnt on the even rows score the odd rows and back."""
    out = np.empty(len(y), dtype=np.float64)
    halves = (np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1)
    size = int(codes.max()) + 1 if len(codes) else 1
    for fit, score in (halves, halves[::-1]):
        total = np.bincount(codes[fit], weights=y[fit], minlength=size)
        count = np.bincount(codes[fit], minlength=size)
        prior = y[fit].mean() if fit.any() else 0.0
        means = (total + prior) / (count + 1)  # one pseudo-row of the prior: unseen codes get it
        out[score] = means[codes[score]]
    return out


def auc(y: np.ndarray, x: np.ndarray) -> float | None:
    """ROC AUC of scores ``x`` for 0/1 labels ``y``; None with a single class. The rank-sum
    formula (mtl/stats.py), none of sklearn's input checks: the check scores every feature
    against every task."""
    return rank_auc(y, x)


def score(feature: np.ndarray, categorical: bool, y: np.ndarray, binary: bool) -> float | None:
    """How well ``feature`` alone predicts ``y``: oriented AUC or |correlation|; None if undefined."""
    if len(y) < MIN_ROWS:
        return None
    x = _target_encoding_score(feature, y) if categorical else feature
    if binary:
        a = auc(y, x)
        return None if a is None else max(a, 1.0 - a)
    if x.std() == 0 or y.std() == 0:
        return None
    return float(abs(np.corrcoef(x, y)[0, 1]))


def sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """Evenly spaced rows (all of them when there are fewer): deterministic, spans the whole log."""
    if len(frame) <= rows:
        return frame
    return frame.take(np.linspace(0, len(frame) - 1, rows).astype(np.int64))


def _categorical_codes(values: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return (codes + 1).astype(np.int64)  # nulls (-1) become a category of their own


def _numeric_values(values: pd.Series) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(x)
    if not finite.all():
        x = np.where(finite, x, (x[finite].min() - 1.0) if finite.any() else 0.0)
    return x


def find_label_leaks(frame: pd.DataFrame, cfg: "Config", threshold: float | None = None,
                     max_rows: int | None = None) -> list[Leak]:
    threshold = cfg.validation.leak_threshold if threshold is None else threshold
    rows = sample(frame, cfg.validation.leak_sample_rows if max_rows is None else max_rows)
    schema = cfg.data.raw_schema
    features = [(c, True) for c in schema.categorical if c in rows.columns]
    features += [(c, False) for c in schema.numeric if c in rows.columns]
    encoded = {c: _categorical_codes(rows[c]) if cat else _numeric_values(rows[c]) for c, cat in features}
    leaks = []
    for task in cfg.raw_tasks:
        if task.label not in rows.columns:
            continue
        y = pd.to_numeric(rows[task.label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        binary = task.type == "binary"
        # rows with a label outside its domain are the suite's business, not a score's
        m = condition_mask(rows, task) & (((y == 0) | (y == 1)) if binary else np.isfinite(y))
        for col, cat in features:
            s = score(encoded[col][m], cat, y[m], binary)
            if s is not None and s >= threshold:
                leaks.append(Leak(col, task.name, round(s, 5), "AUC" if binary else "|correlation|"))
    return leaks
