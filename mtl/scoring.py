"""Raw rows in, one score per task out: the path shared by evaluation, the served model and batch
scoring (mtl/serving/).

The input is checked before anything is computed: a column the model reads that is absent (or
renamed: the message says which input column probably is it) or a numeric column holding text
stops scoring with a message naming the columns. Values the transform knows how to take are not
errors: ids never seen in training go to the out-of-vocabulary slot (or their hash bucket), null
categories to the out-of-vocabulary slot, missing numerics to the imputed value, exactly as in
training.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.data import features
from mtl.data.features import Transform
from mtl.evaluation.forecast import calibrated


class SchemaMismatch(ValueError):
    """Input rows lack columns the model needs, or hold values of the wrong type."""


def scores_from_raw(raw: np.ndarray, transform: Transform) -> pd.DataFrame:
    """Model outputs to user-facing scores: probabilities for binary tasks, label units for regression."""
    out = {}
    for j, task in enumerate(transform.tasks):
        x = raw[:, j].astype(np.float64)
        if task.type == "binary":
            out[task.name] = 1.0 / (1.0 + np.exp(-x))
        else:
            scale = transform.targets[task.name]
            x = np.exp(np.minimum(x, 30.0)) if task.log_link else x  # the log of the scaled mean
            out[task.name] = x * scale["std"] + scale["mean"]
    return pd.DataFrame(out)


def check_columns(present: list[str], needed: list[str], where: str = "the input") -> None:
    """SchemaMismatch naming each needed column that ``present`` lacks, and the likely rename."""
    missing = [c for c in needed if c not in present]
    if not missing:
        return
    unused = [c for c in present if c not in needed]
    renames = []
    for col in missing:
        close = difflib.get_close_matches(col, unused, n=1, cutoff=0.5)
        if not close and len(missing) == 1 and len(unused) == 1:
            close = unused  # one column gone, one unknown column there: most likely the same one
        if close:
            renames.append(f"{close[0]!r} -> {col!r}")
            unused.remove(close[0])
    message = f"{where} is missing column(s) {missing} that the model reads"
    if renames:
        message += f"; renamed? rename {', '.join(renames)}"
    raise SchemaMismatch(f"{message}. The model reads {needed}; {where} has {list(present)}.")


def check_numeric(rows: pd.DataFrame, columns: list[str]) -> None:
    """SchemaMismatch naming numeric columns that hold values which are not numbers (nulls are fine:
    they are imputed)."""
    bad = {}
    for col in columns:
        series = rows[col]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            continue
        as_number = pd.to_numeric(series, errors="coerce")
        wrong = as_number.isna() & series.notna()
        if wrong.any():
            bad[col] = (int(wrong.sum()), series[wrong].astype(str).unique()[:3].tolist())
    if bad:
        detail = "; ".join(f"{c!r}: {n} value(s) such as {examples}" for c, (n, examples) in bad.items())
        raise SchemaMismatch(f"numeric column(s) {list(bad)} hold values that are not numbers ({detail}). "
                             "Send numbers, or null for a missing value (it is imputed as in training).")


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
        t = self.transform
        return [*t.categorical, *t.numeric, *t.sequence, *t.text.get("columns", {})]

    @property
    def tasks(self) -> list[str]:
        return [t.name for t in self.transform.tasks]

    @property
    def panel_columns(self) -> list[str]:
        """What a panel's raw history must hold to be framed (empty without a panel)."""
        from mtl.data.features.framing import feature_columns

        p = self.transform.panel
        return [] if p is None else list(dict.fromkeys([*p.series, p.time, *p.static, *feature_columns(p)]))

    def is_raw_panel(self, columns) -> bool:
        """Raw daily history of a panel, not framed examples: its time column, no lag column."""
        p = self.transform.panel
        return p is not None and p.time in columns and not any(c in columns for c in p.generated_numeric[:1])

    def forecast(self, history: pd.DataFrame) -> pd.DataFrame:
        """A panel's raw recent history in (one row per series and day: at least the lookback days
        up to the newest observed one, then any planned days with their known prices and
        promotions), the next horizon's forecast out: one row per series, its origin, one column
        per task."""
        from mtl.data.features import framing

        p = self.transform.panel
        check_columns(list(history.columns), self.panel_columns, where="the panel history")
        examples = framing.frame_latest(history, p)
        if examples.empty:
            raise SchemaMismatch(f"no series has {p.lookback} observed days in a row up to its newest (data.panel."
                                 f"lookback): send each series' last {p.lookback} days at least")
        scores = self._score(examples)
        return pd.concat([examples[[*p.series, framing.ORIGIN]].reset_index(drop=True), scores], axis=1)

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One score column per task (named by task), one row per input row, in input order; a
        panel's raw history is framed first (:meth:`forecast`: one row per series)."""
        if self.is_raw_panel(rows.columns):
            return self.forecast(rows)
        check_columns(list(rows.columns), self.input_columns)
        return self._score(rows)

    def _score(self, rows: pd.DataFrame) -> pd.DataFrame:
        check_numeric(rows, list(self.transform.numeric))
        from mtl.training.loop import predict_raw

        arrays = features.apply(rows, self.transform, with_labels=False)
        table = self.transform.text_table()  # after apply: it may have encoded new texts
        scores = scores_from_raw(predict_raw(self.model, arrays, text_table=table), self.transform)
        for task, adjustment in getattr(self.model, "calibration", {}).items():  # quantile tasks, from validation
            scores[task] = calibrated(scores[task].to_numpy(), adjustment)
        return scores

    def signature(self):
        """The MLflow signature: the raw input columns by name, one double score per task.

        Input columns are typed "any": MLflow's strict typing would reject what the transform
        takes (a null id, an integer price, an id sent as text), and predict() checks the
        columns and types itself with messages that name them."""
        from mlflow.models import ModelSignature
        from mlflow.types.schema import AnyType, ColSpec, Schema

        # a panel's model is served raw daily history (forecast), not framed examples
        return ModelSignature(
            inputs=Schema([ColSpec(AnyType(), c) for c in (self.panel_columns or self.input_columns)]),
            outputs=Schema([ColSpec("double", t) for t in self.tasks]),
        )
