"""The ``validation``, ``evaluation`` and ``gate`` sections: the data contract, what is
measured, and what a candidate must meet to become the champion."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mtl.config.base import Fraction, Frozen, PositiveInt


class ColumnRule(Frozen):
    """The data contract of one column, beyond what its role in data.schema implies."""

    min: float | None = None  # numeric range, inclusive (a label's domain, a price floor)
    max: float | None = None
    # Largest share of null rows; unset: a feature may be null but not on every row, and labels,
    # the scenario and the time column may never be null.
    max_null_fraction: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    # Bounds on the number of distinct values, either may be null (catches a free-text column
    # declared categorical, or a scenario column that lost its values).
    cardinality: tuple[Annotated[int, Field(ge=0)] | None, Annotated[int, Field(ge=0)] | None] | None = None
    drift: bool = True  # compare this feature's distribution with the champion's training data

    @model_validator(mode="after")
    def _ordered(self) -> "ColumnRule":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        lo, hi = self.cardinality or (None, None)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"cardinality [{lo}, {hi}]: the lower bound is above the upper")
        return self


class Levels(Frozen):
    """A drift measure's warning and failure levels: at or above `warn` the run goes on and says
    so (log and MLflow run); at or above `fail` validation fails."""

    warn: Annotated[float, Field(ge=0.0)]
    fail: Annotated[float, Field(ge=0.0)]

    @model_validator(mode="after")
    def _ordered(self) -> "Levels":
        if self.warn > self.fail:
            raise ValueError(f"warn ({self.warn}) must not be above fail ({self.fail})")
        return self


class DriftConfig(Frozen):
    """Drift and skew of a new batch against the training data of the current champion, from the
    statistics saved in its fitted transform (mtl/data/contracts/drift.py). Without a champion (the first
    run) there is nothing to compare with, and the report says so."""

    enabled: bool = True
    # Population stability index per feature: numeric over the champion's training deciles,
    # categorical over its most frequent values plus one bin for the rest (and one for nulls).
    psi: Levels = Levels(warn=0.1, fail=0.25)
    # Relative change of each task's label rate (regression: of its mean), overall and per
    # scenario; a change within sampling noise (z < 4) is never flagged.
    label_shift: Levels = Levels(warn=0.2, fail=0.5)
    # Share of a categorical feature's rows whose value is outside the champion's vocabulary,
    # beyond the share its own training data had.
    new_category_rate: Levels = Levels(warn=0.05, fail=0.2)
    # Scenarios with fewer labelled rows in the batch are not compared (too noisy).
    min_rows: PositiveInt = 1000


class ValidationConfig(Frozen):
    """The data contract the validate stage enforces (mtl/data/contracts/validation.py), on top of what
    data.schema and tasks imply (columns, types, label domains, funnel rules)."""

    min_rows: PositiveInt = 1  # row-count floor: a much smaller batch is a broken export
    # Columns that identify one impression: two rows with the same key are a duplicate.
    # null: whole rows must not repeat; []: no duplicate check (data without impression ids).
    keys: tuple[str, ...] | None = None
    # data.schema.time may not be later than the validation time plus this (clock skew allowance)...
    max_future_minutes: Annotated[float, Field(ge=0.0)] | None = 60.0
    # ...nor older than this many days before it (null: no age limit).
    max_age_days: Annotated[float, Field(gt=0.0)] | None = None
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    # A YAML file of extra Great Expectations expectations (relative to the project root), in
    # the form of a GX 1.x suite's "expectations" list; null: none.
    expectations: str | None = None
    # A feature that alone predicts a label this well (AUC, or |correlation| for regression) is
    # a leak: validation fails (mtl/data/contracts/leakage.py). Scored on a sample of rows.
    leak_threshold: Annotated[float, Field(gt=0.5, le=1.0)] = 0.99
    leak_sample_rows: PositiveInt = 100_000
    drift: DriftConfig = DriftConfig()
    # Where a failed batch (the ingested copy) and its report are moved (relative to the root).
    quarantine: str = "data/quarantine"


class InventoryCosts(Frozen):
    """What a panel's forecast is worth (mtl/evaluation/decision.py): each origin stocks up to a
    forecast of the horizon's demand; a unit left over costs `holding`, a unit of demand not
    served costs `lost_sale` (its lost margin). The cost-optimal stock is the quantile
    lost_sale / (lost_sale + holding) of demand: 0.9 with the defaults, the P90."""

    holding: Annotated[float, Field(gt=0.0)] = 1.0
    lost_sale: Annotated[float, Field(gt=0.0)] = 9.0

    @property
    def critical_ratio(self) -> float:
        return self.lost_sale / (self.lost_sale + self.holding)


BASELINES = ("single_task", "trees")


class EvaluationConfig(Frozen):
    """What the evaluate stage measures beyond AUC and log-loss (mtl/evaluation/)."""

    # Bootstrap resamples (Poisson weights over the test rows) for the AUC intervals and for the
    # paired comparison with the champion that the gate uses; 0 turns intervals off.
    bootstrap: Annotated[int, Field(ge=0)] = 200
    interval: Fraction = 0.95
    calibration_bins: PositiveInt = 10
    # The column GAUC groups by (a user id): each user's AUC weighted by their rows. null: no GAUC.
    gauc_by: str | None = None
    # Columns reported value by value, beside the schema's scenario (always reported).
    slices: tuple[str, ...] = ()
    # A slice value with fewer test rows is left out of the report and the gate (too noisy).
    min_slice_rows: PositiveInt = 200
    # The yardsticks trained beside the candidate: single_task (one model per task, same features
    # and training settings: each task's multi-task gain, Δm and negative transfer) and, for a
    # panel, trees (boosted trees per task on the same lag features). true: all; false: none.
    baselines: tuple[Literal["single_task", "trees"], ...] = BASELINES
    costs: InventoryCosts = InventoryCosts()  # a panel's decision cost (data.panel)
    seed: int = 0

    @field_validator("baselines", mode="before")
    @classmethod
    def _all_or_none(cls, value):
        if isinstance(value, bool):
            return BASELINES if value else ()
        return (value,) if isinstance(value, str) else value


class Limit(Frozen):
    """Largest allowed worsening of a gate metric against the champion, on the same test rows:
    in the metric's units, or with ``relative`` a fraction of the champion's value. A worsening
    the paired bootstrap interval cannot tell from zero is noise, and passes."""

    max_regression: Annotated[float, Field(ge=0.0)] = 0.0
    relative: bool = False


class TaskGate(Limit):
    """Thresholds on a task's gate metric (AUC for binary tasks, RMSE for regression)."""

    # Absolute floor (binary: minimum AUC) or ceiling (regression: maximum RMSE).
    floor: float | None = None


class SliceGate(Frozen):
    """Largest allowed worsening of each gated task's metric on each value of a slice column.

    One limit per metric, because AUC and RMSE (in the label's own units) never share a number:
    ``auc`` for the binary tasks, ``rmse`` for the regression ones, and ``tasks`` for a task
    of its own. A task whose metric has no limit here is not judged slice by slice.
    """

    auc: Limit | None = None
    rmse: Limit | None = None
    tasks: dict[str, Limit] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_number_per_unit(cls, data):
        if not isinstance(data, dict):
            return data
        if {"max_regression", "relative"} & set(data) or isinstance(data.get("tasks"), list):
            raise ValueError(
                "one max_regression for every task would compare AUC and RMSE in one number; give a limit per "
                "metric, e.g. {auc: {max_regression: 0.01}, rmse: {max_regression: 0.05, relative: true}}, "
                "and per task under tasks: {dwell: {max_regression: 2.0}}")
        return data

    def limit(self, task: str, metric: str) -> Limit | None:
        """The limit on ``task``'s ``metric`` ("auc" or "rmse"), or None when it is not judged."""
        return self.tasks.get(task) or {"auc": self.auc, "rmse": self.rmse}.get(metric)


class GateConfig(Frozen):
    model_name: Annotated[str, Field(min_length=1)] = "mtl-ecommerce"
    # Against a champion, at least one gated task must improve beyond noise (the lower end of its
    # paired interval above 0) or the mean relative change over the gated tasks must be positive;
    # a candidate that is merely as good does not replace it.
    require_improvement: bool = True
    tasks: dict[str, TaskGate] = Field(default_factory=dict)
    # slice column (the scenario or one of evaluation.slices) -> its limits
    slices: dict[str, SliceGate] = Field(default_factory=dict)
