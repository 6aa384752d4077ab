"""Per-task metrics. Every metric is computed once over the whole split (never averaged over
batches, which silently drops batches without positives) and only on rows where the task is
defined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score, roc_curve

from mtl.config import TaskConfig
from mtl.stats import rank_auc


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC, or None when the rows hold a single class (AUC is undefined, not 0.5)."""
    if len(y) == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, score))


def logloss(y: np.ndarray, p: np.ndarray) -> float | None:
    if len(y) == 0:
        return None
    return float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def rmse(y: np.ndarray, pred: np.ndarray) -> float | None:
    return float(np.sqrt(np.mean((y - pred) ** 2))) if len(y) else None


def mae(y: np.ndarray, pred: np.ndarray) -> float | None:
    return float(np.mean(np.abs(y - pred))) if len(y) else None


def pr_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the precision-recall curve (average precision); None without positives."""
    if len(y) == 0 or y.max() == 0:
        return None
    return float(average_precision_score(y, p))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability diagram: per equal-width probability bin, mean prediction vs observed rate."""
    if len(y) == 0:
        return []
    idx = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    rows = np.bincount(idx, minlength=bins)
    pred = np.bincount(idx, weights=p, minlength=bins)
    pos = np.bincount(idx, weights=y, minlength=bins)
    return [{"low": b / bins, "high": (b + 1) / bins, "rows": int(rows[b]), "mean_prediction": float(pred[b] / rows[b]),
             "positive_rate": float(pos[b] / rows[b])} for b in range(bins) if rows[b]]


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error: the row-weighted gap between prediction and rate per bin."""
    if len(y) == 0:
        return None
    return float(sum(b["rows"] * abs(b["mean_prediction"] - b["positive_rate"]) for b in reliability(y, p, bins)) / len(y))


def gauc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float | None:
    """Group AUC (Zhou et al., 2018): each user's AUC weighted by their rows, over the users
    with both classes. It judges ranking within a user's own impressions, which is what a feed
    serves; a pooled AUC also rewards telling active users from idle ones."""
    if len(y) == 0:
        return None
    codes, group = np.unique(groups, return_inverse=True)
    order = np.lexsort((p, group))
    g, yy, pp = group[order], y[order], p[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    total, weight = 0.0, 0
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(g)]):
        ys = yy[lo:hi]
        positives = ys.sum()
        if 0 < positives < len(ys):
            total += (hi - lo) * rank_auc(ys, pp[lo:hi], presorted=True)
            weight += hi - lo
    return float(total / weight) if weight else None


@dataclass(frozen=True)
class Resamples:
    """Poisson(1) bootstrap row weights over ``n`` rows, drawn one resample at a time.

    Resample ``r`` is the same vector whenever it is drawn (its generator is seeded by
    (seed, r)), so two models scored on the same rows are judged on the same resamples (a paired
    comparison), and memory stays one row vector whatever the test split's size. ``where``
    narrows to a subset of the rows (a task's rows, a slice) without changing the draws.
    """

    n: int
    count: int
    seed: int
    rows: np.ndarray | None = None  # bool mask over the n rows, None for all of them

    def where(self, mask: np.ndarray) -> "Resamples":
        if self.rows is None:
            return Resamples(self.n, self.count, self.seed, np.asarray(mask, bool))
        rows = self.rows.copy()
        rows[rows] = mask
        return Resamples(self.n, self.count, self.seed, rows)

    def __iter__(self):
        for r in range(self.count):
            w = np.random.default_rng([self.seed, r]).poisson(1.0, self.n).astype(np.float32)
            yield w if self.rows is None else w[self.rows]


class WeightedAUC:
    """AUC of fixed labels and scores under any row weights: the scores are ranked once, so each
    resample costs two bincounts. Ties count a half, as in roc_auc_score."""

    def __init__(self, y: np.ndarray, p: np.ndarray):
        _, self.inverse = np.unique(p, return_inverse=True)
        self.pos, self.neg = (y == 1), (y == 0)
        self.bins = int(self.inverse.max()) + 1 if len(p) else 0

    def __call__(self, w: np.ndarray) -> float:
        wp = np.bincount(self.inverse[self.pos], weights=w[self.pos], minlength=self.bins)
        wn = np.bincount(self.inverse[self.neg], weights=w[self.neg], minlength=self.bins)
        denom = wp.sum() * wn.sum()
        return float((wp * (np.cumsum(wn) - 0.5 * wn)).sum() / denom) if denom > 0 else np.nan


class WeightedRMSE:
    def __init__(self, y: np.ndarray, pred: np.ndarray):
        self.sq = (y - pred) ** 2

    def __call__(self, w: np.ndarray) -> float:
        total = w.sum()
        return float(np.sqrt((w @ self.sq) / total)) if total > 0 else np.nan


class WeightedWAPE:
    def __init__(self, y: np.ndarray, pred: np.ndarray):
        self.err, self.y = np.abs(y - pred), np.abs(y)

    def __call__(self, w: np.ndarray) -> float:
        total = w @ self.y
        return float((w @ self.err) / total) if total > 0 else np.nan


class WeightedPinball:
    def __init__(self, y: np.ndarray, pred: np.ndarray, quantile: float):
        diff = y - pred
        self.loss = np.maximum(quantile * diff, (quantile - 1.0) * diff)

    def __call__(self, w: np.ndarray) -> float:
        total = w.sum()
        return float((w @ self.loss) / total) if total > 0 else np.nan


def weighted_aucs(y: np.ndarray, p: np.ndarray, weights) -> np.ndarray:
    """AUC under each weight vector of ``weights`` (an iterable of (n,) vectors, e.g.
    :class:`Resamples`)."""
    from mtl.progress import iterate

    auc_under = WeightedAUC(y, p)
    return np.asarray([auc_under(w) for w in iterate(weights, "bootstrap", getattr(weights, "count", None),
                                                     "resamples")])


def interval(samples: np.ndarray, level: float) -> tuple[float, float] | None:
    """Percentile interval of bootstrap samples (None when the metric was undefined)."""
    samples = samples[~np.isnan(samples)]
    if len(samples) < 2:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def binary_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float | None]:
    return {"auc": auc(y, p), "pr_auc": pr_auc(y, p), "logloss": logloss(y, p), "ece": ece(y, p, bins),
            "positive_rate": float(y.mean()) if len(y) else None, "mean_prediction": float(p.mean()) if len(y) else None,
            "rows": int(len(y))}


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float | None:
    """The score threshold (predict positive where ``p >= threshold``) with the highest F1 on
    these rows, chosen among the distinct scores; the highest such score when several tie. None
    when the rows hold a single class: every threshold is then equally right or wrong."""
    if len(y) == 0 or y.min() == y.max():
        return None
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    # One cut point per distinct score, after its last (lowest-ranked) row: equal scores are all
    # predicted alike, so no threshold can split them.
    last = np.r_[np.flatnonzero(ps[1:] != ps[:-1]), len(ps) - 1]
    tp = np.cumsum(y[order])[last]
    f1 = 2 * tp / (last + 1 + tp[-1])  # F1 = 2 TP / (predicted positives + actual positives)
    return float(ps[last[np.argmax(f1)]])


def f1_thresholds(p: np.ndarray, labels: np.ndarray, mask: np.ndarray, tasks: Sequence[TaskConfig]) -> dict[str, float | None]:
    """Per binary task, :func:`best_f1_threshold` on the rows where the task is defined.

    ``p``, ``labels`` and ``mask`` are (rows, tasks), as in a split's Arrays, with ``p`` the
    served scores (probabilities). Chosen on validation, reported on test, on the rows and
    scores of the task's headline AUC (a funnel task's: every impression)."""
    return {t.name: best_f1_threshold(labels[mask[:, j], j], p[mask[:, j], j])
            for j, t in enumerate(tasks) if t.type == "binary"}


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float | None) -> dict[str, float | None]:
    """Precision, recall, F1 and accuracy of predicting positive where ``p >= threshold``, and
    the threshold. Each is None where undefined: no threshold (a model that has none, a task
    whose validation rows held one class), no rows, no predicted or actual positives."""
    if threshold is None or len(y) == 0:
        return dict.fromkeys(("threshold", "precision", "recall", "f1", "accuracy"))
    predicted = p >= threshold
    positive = y == 1
    tp, n_pred, n_pos = int((predicted & positive).sum()), int(predicted.sum()), int(positive.sum())
    return {"threshold": float(threshold),
            "precision": tp / n_pred if n_pred else None,
            "recall": tp / n_pos if n_pos else None,
            "f1": 2 * tp / (n_pred + n_pos) if n_pred + n_pos else None,
            "accuracy": float((predicted == positive).mean())}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    return {"rmse": rmse(y, pred), "mae": mae(y, pred), "rows": int(len(y))}


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """A thinned ROC curve for plots (DVC plots / MLflow)."""
    if len(y) == 0 or y.min() == y.max():
        return []
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    return [{"fpr": round(float(fpr[i]), 5), "tpr": round(float(tpr[i]), 5)} for i in keep]
