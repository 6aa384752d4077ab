"""`mtl tune`: hyperparameter search with Optuna over the preprocessed features.

The first trial trains params.yaml as shipped, so the best one is judged against it in the same
study, on the same data and seed. The pure part (what a trial trains, the study's name, the
verdict, the overlay, the table) is plain functions; :func:`tune` is the I/O shell around them:
the study in optuna.db (a rerun resumes it), an MLflow parent run with a child per trial, and
the best settings written to tune_best.yaml, which :func:`apply_best` copies into params.yaml.

A search only trains and logs params and metrics: it never logs or registers a model, so the
registry and its aliases (the champion) are never touched.
"""

from mtl.tuning.apply import apply_best
from mtl.tuning.search import TuneError, TuneInterrupted, tune
from mtl.tuning.space import (TrialRow, TuneResult, current_values, flat, overlay_text, shipped_params, study_name, suggest,
                              table, verdict)

__all__ = ["TrialRow", "TuneError", "TuneInterrupted", "TuneResult", "apply_best", "current_values", "flat",
           "overlay_text", "shipped_params", "study_name", "suggest", "table", "tune", "verdict"]
