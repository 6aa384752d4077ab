"""Small numeric helpers shared across layers (data contracts and evaluation), kept free of
heavy imports: numpy only, no scikit-learn (validation checks every feature against every
task and cannot pay for its input checks or its import)."""

from __future__ import annotations

import numpy as np


def rank_auc(y: np.ndarray, x: np.ndarray, presorted: bool = False) -> float | None:
    """ROC AUC of scores ``x`` for 0/1 labels ``y`` by the rank-sum (Mann-Whitney) formula, ties
    at their mean rank; None with a single class. ``presorted``: ``x`` is already in ascending
    order (a group of a sorted array), which saves the sort."""
    positives = float(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    if not presorted:
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    first = np.r_[True, x[1:] != x[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    ranks = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]  # 1-based mean rank of each tie group
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))
