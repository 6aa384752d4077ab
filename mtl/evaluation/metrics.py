"""Per-task metrics. Every metric is computed once over the whole split (never averaged over
batches, which silently drops batches without positives) and only on rows where the task is
defined."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score, roc_curve


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


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    return {"auc": auc(y, p), "logloss": logloss(y, p), "positive_rate": float(y.mean()) if len(y) else None,
            "rows": int(len(y))}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    return {"rmse": rmse(y, pred), "mae": mae(y, pred), "rows": int(len(y))}


def roc_points(y: np.ndarray, p: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """A thinned ROC curve for plots (DVC plots / MLflow)."""
    if len(y) == 0 or y.min() == y.max():
        return []
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int))
    return [{"fpr": round(float(fpr[i]), 5), "tpr": round(float(tpr[i]), 5)} for i in keep]
