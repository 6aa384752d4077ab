"""The ``tune`` section: `mtl tune`'s search space and budget (mtl/tuning/)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from mtl.config.base import Frozen, PositiveInt


class SearchDimension(Frozen):
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


class PruningConfig(Frozen):
    """Median pruning: a trial whose validation score after an epoch is below the median of the
    earlier trials' scores at that epoch stops there."""

    enabled: bool = True
    startup_trials: Annotated[int, Field(ge=0)] = 3  # trials that finish before any is pruned
    warmup_epochs: Annotated[int, Field(ge=0)] = 1  # epochs every trial runs before it may be pruned


class TuneConfig(Frozen):
    """`mtl tune`: hyperparameter search with Optuna's TPE sampler (mtl/tuning/)."""

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


def not_tunable(key: str, raw: dict[str, Any]) -> str | None:
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
