"""Gradient-boosted trees, one per task, on the same features: the strong baseline of demand
forecasting (most top M5 solutions were boosted trees on lag features). scikit-learn's
HistGradientBoosting is that kind of model and adds no dependency.

Each task gets the loss that matches its own: log-loss for a binary task, Poisson for a count
with a log link (scikit-learn's boosting has no Tweedie loss), quantile for a pinball task,
squared error otherwise. The trees read the fitted transform's inputs: the scaled numerics (a
monotone map of the raw values, which trees do not mind) and the categorical codes, as
categories where a column has at most 255 values (the trees' limit), else as ordinal codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl.config import TaskConfig
from mtl.evaluation.forecast import calibrated, conformal_adjustment

MAX_ROWS = 200_000  # training rows per task (a seeded sample above it): minutes, not hours, on 2 cores
MAX_CATEGORIES = 255


def _features(arrays) -> np.ndarray:
    return np.hstack([np.asarray(arrays.cat, dtype=np.float32), np.asarray(arrays.num, dtype=np.float32)])


def _model(task: TaskConfig, categorical: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    common = {"categorical_features": categorical, "random_state": seed, "max_iter": 300, "early_stopping": True}
    if task.type == "binary":
        return HistGradientBoostingClassifier(**common)
    if task.loss == "pinball":
        return HistGradientBoostingRegressor(loss="quantile", quantile=task.quantile, **common)
    return HistGradientBoostingRegressor(loss="poisson" if task.log_link else "squared_error", **common)


def fit_predict(train, test, tasks: tuple[TaskConfig, ...], targets: dict[str, dict], cardinalities: list[int],
                seed: int = 0, validation=None) -> pd.DataFrame:
    """Scores of ``test`` (an Arrays) per task, in the units the served model returns
    (probabilities, label units), from trees fitted on ``train``. With ``validation``, a quantile
    task's forecast is calibrated on it as the network's is (forecast.conformal_adjustment)."""
    x_train, x_test = _features(train), _features(test)
    x_validation = _features(validation) if validation is not None else None
    n_cat = len(cardinalities)
    categorical = np.zeros(x_train.shape[1], dtype=bool)
    categorical[:n_cat] = np.asarray(cardinalities) <= MAX_CATEGORIES
    rng = np.random.default_rng(seed)
    out = {}
    for j, task in enumerate(tasks):
        rows = np.flatnonzero(np.asarray(train.mask[:, j]))
        if len(rows) > MAX_ROWS:
            rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
        y = np.asarray(train.labels[rows, j], dtype=np.float64)
        model = _model(task, categorical, seed).fit(x_train[rows], y)
        if task.type == "binary":
            out[task.name] = model.predict_proba(x_test)[:, 1]
        else:
            scale = targets[task.name]
            out[task.name] = model.predict(x_test) * scale["std"] + scale["mean"]
            if task.loss == "pinball" and validation is not None:
                rows = np.asarray(validation.mask[:, j], dtype=bool)
                actual = np.asarray(validation.labels[rows, j], dtype=np.float64) * scale["std"] + scale["mean"]
                forecast = model.predict(x_validation[rows]) * scale["std"] + scale["mean"]
                adjustment = conformal_adjustment(actual, forecast, task.quantile)
                if adjustment is not None:
                    out[task.name] = calibrated(out[task.name], adjustment)
    return pd.DataFrame(out)
