"""Raw rows in, one score per task out: the path shared by evaluation and the served model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtl.data import features
from mtl.data.features import Transform


class SchemaMismatch(ValueError):
    """Input rows lack columns the model needs."""


def scores_from_raw(raw: np.ndarray, transform: Transform) -> pd.DataFrame:
    """Model outputs to user-facing scores: probabilities for binary tasks, label units for regression."""
    out = {}
    for j, task in enumerate(transform.tasks):
        if task["type"] == "binary":
            out[task["name"]] = 1.0 / (1.0 + np.exp(-raw[:, j].astype(np.float64)))
        else:
            scale = transform.targets[task["name"]]
            out[task["name"]] = raw[:, j] * scale["std"] + scale["mean"]
    return pd.DataFrame(out)


class Scorer:
    def __init__(self, transform: Transform, model):
        self.transform = transform
        self.model = model

    @classmethod
    def load(cls, transform_path: str | Path, model_path: str | Path) -> "Scorer":
        from mtl.training.checkpoint import load_model

        return cls(Transform.load(Path(transform_path)), load_model(Path(model_path)))

    @property
    def input_columns(self) -> list[str]:
        return [*self.transform.categorical, *self.transform.numeric]

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.input_columns if c not in rows.columns]
        if missing:
            raise SchemaMismatch(
                f"input is missing column(s) {missing}; the model needs {self.input_columns} "
                f"(got {list(rows.columns)})"
            )
        from mtl.training.loop import predict_raw

        arrays = features.apply(rows, self.transform, with_labels=False)
        return scores_from_raw(predict_raw(self.model, arrays), self.transform)
