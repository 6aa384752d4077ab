"""The one typed configuration: ``params.yaml`` parsed once into frozen, validated objects.

Every stage receives a :class:`Config`; nothing else reads ``params.yaml``: the CLI, the stages,
`mtl tune` and the Airflow DAGs all go through ``load_config`` / ``parse_config`` here, and
override it with ``apply_overrides``. An unknown key or a bad value fails at load time with a
:class:`ConfigError` that names the key, so a typo never silently falls back to a default.

One module per group of sections (data, features and tasks, model and train, validation /
evaluation / gate, scoring and airflow, tune); this one holds the whole and its cross-checks.
It imports nothing of the project but the registries' names (mtl/names.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from mtl.config.base import ConfigError, Fraction, Frozen, PositiveInt
from mtl.config.data import DataConfig, SchemaConfig, SplitConfig, SupplyChainConfig, SyntheticConfig
from mtl.config.features import CategoricalSpec, Condition, FeaturesConfig, NumericSpec, TaskConfig
from mtl.config.model import DistributedConfig, ModelConfig, TrainConfig, WeightingConfig
from mtl.config.operations import AirflowConfig, DailyScoringConfig, RetrainingConfig, ScoringConfig
from mtl.config.panel import InventoryConfig, OrdersConfig, PanelConfig
from mtl.config.quality import (DriftConfig, EvaluationConfig, GateConfig, InventoryCosts, Levels, Limit, SliceGate,
                                TaskGate, ValidationConfig)
from mtl.config.retention import RetentionConfig
from mtl.config.tune import DEFAULT_SPACE, SearchDimension, TuneConfig, not_tunable
from mtl.names import ARCHITECTURES, SYNTHETIC_KINDS

__all__ = [
    "AirflowConfig", "CategoricalSpec", "Condition", "Config", "ConfigError", "DEFAULT_SPACE", "DailyScoringConfig",
    "DataConfig", "DistributedConfig", "DriftConfig", "EvaluationConfig", "FeaturesConfig", "Fraction", "GateConfig",
    "InventoryConfig", "InventoryCosts", "Levels", "Limit", "ModelConfig", "NumericSpec", "OrdersConfig", "PanelConfig",
    "PositiveInt", "RetentionConfig", "RetrainingConfig",
    "SchemaConfig", "ScoringConfig", "SearchDimension", "SliceGate", "SplitConfig", "SupplyChainConfig",
    "SyntheticConfig", "TaskConfig", "TaskGate", "TrainConfig", "TuneConfig", "ValidationConfig", "WeightingConfig",
    "apply_overrides", "load_config", "parse_config", "read_raw", "with_overrides",
]


class Config(Frozen):
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
    retention: RetentionConfig = RetentionConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> "Config":
        """What no single section can check: names and columns that must agree across sections."""
        self._check_tasks()
        self._check_feature_overrides()
        self._check_columns()
        self._check_gate()
        if self.model.architecture not in ARCHITECTURES:
            raise ValueError(
                f"model.architecture: unknown {self.model.architecture!r}; "
                f"choose one of {sorted(ARCHITECTURES)}"
            )
        return self

    def _check_tasks(self) -> None:
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
            if self.train.weighting.method != "static" and t.weight != 1.0:
                raise ValueError(
                    f"tasks[{i}].weight: only used by train.weighting.method static, not "
                    f"{self.train.weighting.method!r}; remove the weight or use static"
                )

    def _check_feature_overrides(self) -> None:
        schema = self.data.schema
        for col in self.features.columns:
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

    def _check_columns(self) -> None:
        """Columns named by validation are columns of the raw data (data.schema, or data.panel's),
        those named by evaluation columns of the examples (data.schema)."""
        schema = self.data.schema
        where = "data.panel" if self.data.panel is not None else "data.schema"
        declared = set(self.data.raw_schema.required_columns())
        for col in self.validation.columns:
            if col not in declared:
                raise ValueError(f"validation.columns.{col}: not a column of {where} "
                                 f"{sorted(declared)}; declare it there or remove the rule")
        for col in self.validation.keys or ():
            if col not in declared:
                raise ValueError(f"validation.keys: {col!r} is not a column of {where} {sorted(declared)}")
        for col in self.evaluation.slices:
            if col not in schema.categorical:
                raise ValueError(f"evaluation.slices: {col!r} is not a categorical column of data.schema "
                                 f"{list(schema.categorical)}")
        if self.evaluation.gauc_by is not None and self.evaluation.gauc_by not in schema.categorical:
            raise ValueError(f"evaluation.gauc_by: {self.evaluation.gauc_by!r} is not a categorical column of "
                             f"data.schema {list(schema.categorical)}")

    def _check_gate(self) -> None:
        names = [t.name for t in self.tasks]
        for name in self.gate.tasks:
            if name not in names:
                raise ValueError(f"gate.tasks.{name}: no task named {name!r} (tasks: {names})")
        for col, rule in self.gate.slices.items():
            if col not in self.slice_columns():
                raise ValueError(f"gate.slices.{col}: not a reported slice; add it to evaluation.slices "
                                 f"(reported: {list(self.slice_columns())})")
            for name in rule.tasks:
                if name not in self.gate.tasks:
                    raise ValueError(f"gate.slices.{col}.tasks: {name!r} has no gate.tasks entry")

    @model_validator(mode="after")
    def _tune_space(self) -> "Config":
        """Every tune.space key is a hyperparameter of this config and each of its values (a
        range's ends, every choice) makes a valid config, so a typo fails now, not trials later.
        Runs after _cross_references: the config itself is valid, so a copy fails for its value."""
        raw = self.model_dump(mode="json", by_alias=True)
        for key, dim in self.tune.space.items():
            if why := not_tunable(key, raw):
                raise ValueError(f"tune.space.{key}: {why}")
            for value in dim.samples():
                try:
                    with_overrides(self, {key: value, "tune.space": {}})  # no space: no recursion
                except ConfigError as err:
                    detail = "; ".join(line.strip(" -").replace("(top level): ", "").replace("Value error, ", "")
                                       for line in str(err).splitlines()[1:])
                    raise ValueError(f"tune.space.{key}: {value!r} is not a valid value: {detail}") from None
        return self

    @property
    def raw_tasks(self) -> tuple[TaskConfig, ...]:
        """The tasks whose labels the raw data holds (what its contract checks): all of them, or
        none with a panel, whose labels are framed from it later (a raw column may share a
        label's name, as the generated panel's true `demand` does)."""
        return () if self.data.panel is not None else self.tasks

    def slice_columns(self) -> tuple[str, ...]:
        """The columns evaluation reports value by value: the scenario first, then evaluation.slices."""
        scenario = (self.data.schema.scenario,) if self.data.schema.scenario else ()
        return tuple(dict.fromkeys(scenario + self.evaluation.slices))

    def task(self, name: str) -> TaskConfig:
        return next(t for t in self.tasks if t.name == name)

    def single_task_baseline(self) -> "Config":
        """These settings with architecture single_task: the baseline each task's multi-task gain
        is measured against. Static task weights are a multi-task device (how losses share a
        model): separate models need none, and only the static method reads them, so the
        baseline trains with it."""
        weighting = self.train.weighting.model_copy(update={"method": "static"})
        return self.model_copy(update={"model": self.model.model_copy(update={"architecture": "single_task"}),
                                       "train": self.train.model_copy(update={"weighting": weighting})})


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"{source} is invalid:"]
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        # data.synthetic is a union chosen by its kind, and pydantic puts the kind in the path
        # (data.synthetic.supply_chain.items); the key the user writes has none.
        tagged = loc[:2] == ["data", "synthetic"] and len(loc) > 2 and loc[2] in SYNTHETIC_KINDS
        kind = loc.pop(2) if tagged else None
        key = ".".join(loc) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params.yaml in the repository for all keys)"
            if kind is not None:
                msg = f"unknown key of data.synthetic kind {kind!r} (check the spelling and data.synthetic.kind)"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "params.yaml") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections (data, tasks, ...), got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def apply_overrides(raw: dict[str, Any], dotted: dict[str, Any]) -> dict[str, Any]:
    """A copy of the raw params with dotted-key overrides (``{"train.epochs": 2}``) set: the one
    way every reader (the CLI, Airflow's per-run form, `mtl tune`) overrides params.yaml. A
    missing section is created (validation then says whether the key exists); a key under a
    value that is not a section is refused."""
    import copy

    if dotted and not isinstance(raw, dict):
        raise ConfigError(f"params must be a mapping of sections to override {', '.join(dotted)}")
    out = copy.deepcopy(raw)
    for key, value in dotted.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {key}: {p!r} is not a section of params.yaml")
            node = nxt
        node[last] = value
    return out


def with_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """``cfg`` with dotted-key overrides (``{"train.learning_rate": 1e-3}``), validated anew."""
    raw = apply_overrides(cfg.model_dump(mode="json", by_alias=True), overrides)
    return parse_config(raw, source="params.yaml with " + ", ".join(overrides))


def read_raw(path: str | Path = "params.yaml") -> dict[str, Any]:
    """params.yaml as written (a mapping), before validation; ConfigError if it is not YAML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; run from the project root or pass --params PATH")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None


def load_config(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read, apply dotted-key overrides (``{"train.epochs": 2}``), validate."""
    raw = apply_overrides(read_raw(path), overrides or {})
    return parse_config(raw, source=str(path))
