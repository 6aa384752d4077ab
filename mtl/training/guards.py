"""Checks that stop a training run before it produces a silently wrong model.

The label-leak guard: a feature that is a near-copy of a label (the label itself left among the
features, or a column computed after the outcome, like an order id only purchases have) yields
test AUCs near 1.0 that no served model will ever reach. Each feature is scored alone against
each label on a sample of training rows; categorical inputs by a target encoding fitted on one
half and scored on the other (so ids that merely memorise a few rows do not trip it), numeric
inputs by their value. A feature that alone predicts a label almost perfectly stops training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtl.data.features import Arrays
from mtl.evaluation.metrics import auc


class LabelLeak(ValueError):
    """A feature is (nearly) a copy of a label; the message names both and the fix."""


@dataclass(frozen=True)
class Leak:
    feature: str
    task: str
    score: float  # AUC (binary tasks, oriented so 1.0 is a perfect copy) or |correlation|
    metric: str = "AUC"


def _target_encoding_score(codes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Out-of-fold target encoding: means learnt on the even rows score the odd rows and back."""
    out = np.empty(len(y), dtype=np.float64)
    halves = (np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1)
    for fit, score in (halves, halves[::-1]):
        size = int(codes.max()) + 1 if len(codes) else 1
        total = np.bincount(codes[fit], weights=y[fit], minlength=size)
        count = np.bincount(codes[fit], minlength=size)
        prior = y[fit].mean() if fit.any() else 0.0
        means = (total + prior) / (count + 1)  # one pseudo-row of the prior: unseen codes get it
        out[score] = means[codes[score]]
    return out


def find_label_leaks(arrays: Arrays, cat_names: list[str], num_names: list[str], tasks: list[dict],
                     threshold: float = 0.99, max_rows: int = 200_000) -> list[Leak]:
    n = min(len(arrays), max_rows)
    cat = np.asarray(arrays.cat[:n]).astype(np.int64)
    num = np.asarray(arrays.num[:n], dtype=np.float64)
    labels, mask = np.asarray(arrays.labels[:n]), np.asarray(arrays.mask[:n])
    leaks = []
    for j, task in enumerate(tasks):
        m = mask[:, j]
        y = labels[m, j].astype(np.float64)
        if len(y) < 20:
            continue
        binary = task["type"] == "binary"
        columns = [(name, _target_encoding_score(cat[m, i], y)) for i, name in enumerate(cat_names)]
        columns += [(name, num[m, i]) for i, name in enumerate(num_names)]
        for name, x in columns:
            if binary:
                a = auc(y, x)
                score = None if a is None else max(a, 1.0 - a)
            else:
                score = float(abs(np.corrcoef(x, y)[0, 1])) if x.std() > 0 and y.std() > 0 else None
            if score is not None and score >= threshold:
                leaks.append(Leak(name, task["name"], round(score, 5), "AUC" if binary else "|correlation|"))
    return leaks


def check_label_leaks(arrays: Arrays, cat_names: list[str], num_names: list[str], tasks: list[dict],
                      threshold: float) -> None:
    leaks = find_label_leaks(arrays, cat_names, num_names, tasks, threshold)
    if leaks:
        lines = [f"  - feature {lk.feature!r} alone predicts task {lk.task!r} with "
                 f"{lk.metric} {lk.score:.4f}" for lk in leaks]
        raise LabelLeak(
            "training stopped: feature(s) are near-copies of a label (threshold "
            f"{threshold}):\n" + "\n".join(lines) + "\nRemove them from data.schema (a label, or a column only "
            "known after the outcome, must not be a feature), or raise train.leak_threshold if this "
            "is genuinely predictive."
        )
