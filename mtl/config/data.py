"""The ``data`` section: where the raw log comes from, its schema, how it is split."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from mtl.config.base import Fraction, Frozen, PositiveInt, registered
from mtl.config.panel import PanelConfig
from mtl.names import ADAPTERS, SYNTHETIC, SYNTHETIC_KINDS

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class SyntheticConfig(Frozen):
    """Knobs of the generated impression log (see mtl/data/ingest/synthetic.py)."""

    kind: Literal["impressions"] = "impressions"  # data.synthetic.kind (see DataConfig.synthetic)
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


class SupplyChainConfig(Frozen):
    """Knobs of the generated supply-chain daily panel (see mtl/data/ingest/supply_chain.py): one
    row per item, warehouse and day, with demand, censored sales, stock, orders and deliveries."""

    kind: Literal["supply_chain"] = "supply_chain"
    items: PositiveInt = 500  # products; each has one category and one supplier
    warehouses: PositiveInt = 4  # every item is stocked in every warehouse: items x warehouses series
    categories: PositiveInt = 20  # share weekly profiles, yearly phase, holiday sensitivity, price level
    suppliers: PositiveInt = 25  # each has a promised lead time and its own reliability
    days: PositiveInt = 730  # days written per series (a burn-in before `start` is simulated, not written)
    # the first written date (ISO); a Monday lines weekdays up with day numbers. Two years from it
    # end in the past (2026-11-03): the data contract refuses days later than its clock.
    start: str = "2024-11-04"
    latent_dim: PositiveInt = 4  # dimension of the item x warehouse affinity in the demand level
    intermittent_share: Share = 0.3  # share of items with sparse demand (0.05-0.5 units a day, mostly zeros)
    promo_share: Share = 0.08  # share of item-days on promotion (runs of several days, 10-40% off)
    review_days: PositiveInt = 7  # periodic review: each series may order once every review_days days
    seed: int = 42

    @field_validator("start")
    @classmethod
    def _iso_date(cls, v: str) -> str:
        try:
            datetime.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-01-06") from None
        return v


def _synthetic_kind(value: Any) -> str:
    """The union member a data.synthetic section is: its ``kind``, impressions when it has none."""
    if isinstance(value, dict):
        return value.get("kind", "impressions")
    return getattr(value, "kind", "impressions")


# data.synthetic: which generator, chosen by `kind` (mtl.names.SYNTHETIC_KINDS); params.yaml files
# written before there was a choice have no kind and mean the impression log.
Synthetic = Annotated[
    Union[Annotated[SyntheticConfig, Tag("impressions")], Annotated[SupplyChainConfig, Tag("supply_chain")]],
    Discriminator(_synthetic_kind),
]


class SchemaConfig(Frozen):
    """Which columns of the raw data play which role. Columns not named here are ignored."""

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # with data.panel, its labels join these (framed from the panel)
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


class SplitConfig(Frozen):
    """How rows are divided into train / validation / test (see mtl/data/features/splits.py).

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


class DataConfig(Frozen):
    # "synthetic" (generated), the name of a dataset adapter ("files", "ali_ccp", "aliexpress",
    # "census_income", "m5"; see mtl/data/ingest/adapters/) read from `path`, or directly a path to your own
    # parquet/CSV file or folder (shorthand for source: files, path: <it>).
    source: str = SYNTHETIC
    path: str | None = None
    # The generator's knobs (source: synthetic); `kind` picks the dataset: impressions (the default,
    # the impression log of the training pipeline) or supply_chain (a daily inventory panel).
    synthetic: Synthetic = SyntheticConfig()
    schema_: SchemaConfig = Field(alias="schema")
    split: SplitConfig = SplitConfig()
    # A sliding window: keep only rows in the last N whole days of data.schema.time (the newest
    # day in the files counts as day 1). null keeps every row. Files are read, never rewritten.
    window_days: PositiveInt | None = None
    # A daily panel (one row per series and day, e.g. item x warehouse sales) to frame into
    # forecast examples before the features are fitted; null: every row is an example already.
    panel: PanelConfig | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def schema(self) -> SchemaConfig:  # noqa: D401 - the pydantic field is aliased
        """What every example holds (the model's inputs and labels). With a panel, the examples are
        framed from it, and what framing makes (the series and static columns, lags, the horizon's
        planned values, open orders, the origin's calendar, the labels and their truth, the origin
        as time) joins what data.schema lists."""
        if self.panel is None:
            return self.schema_
        s, p = self.schema_, self.panel
        return s.model_copy(update={
            "categorical": tuple(dict.fromkeys([*s.categorical, *p.series, *p.static, *p.CALENDAR])),
            "numeric": tuple(dict.fromkeys([*s.numeric, *p.generated_numeric])),
            "labels": tuple(dict.fromkeys([*s.labels, *p.labels])),
            "truth": {label: f"truth_{label}" for label in p.truth_labels} | s.truth,
            "time": s.time or "origin",
        })

    @property
    def raw_schema(self) -> SchemaConfig:
        """What the raw data holds, as the data contract and the adapters see it: the examples
        themselves, or with a panel, its series, static and daily columns (labels are framed later)."""
        if self.panel is None:
            return self.schema_
        p = self.panel
        daily = [c for c in p.daily_columns() if c not in p.truth.values()]
        return SchemaConfig(categorical=(*p.series, *p.static), numeric=tuple(dict.fromkeys(daily)), labels=(),
                            time=p.time, truth={})

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def adapter(self) -> str:
        """The adapter that reads the source (a bare path means the generic "files" adapter)."""
        return self.source if self.source in ADAPTERS or self.is_synthetic else "files"

    @property
    def source_path(self) -> str | None:
        """Where the adapter reads from: ``path``, or the source itself when it is a path."""
        if self.is_synthetic:
            return None
        return self.path if self.source in _adapter_names() else self.source

    @model_validator(mode="before")
    @classmethod
    def _known_synthetic_kind(cls, raw: Any) -> Any:
        """An unknown kind names the key and the choices (the union alone would say only 'data.synthetic')."""
        synthetic = raw.get("synthetic") if isinstance(raw, dict) else None
        if isinstance(synthetic, dict):
            try:
                registered(str(_synthetic_kind(synthetic)), SYNTHETIC_KINDS, "synthetic kind")
            except ValueError as err:
                raise ValueError(f"data.synthetic.kind: {err}") from None
        return raw

    @model_validator(mode="after")
    def _has_features(self) -> "DataConfig":
        if not self.schema.features:  # with a panel, framing makes them
            raise ValueError("data.schema: declare at least one categorical or numeric feature column")
        return self

    @model_validator(mode="after")
    def _panel_split(self) -> "DataConfig":
        """A panel's examples carry their backtest split (by time, data.panel); another split
        would mix the future into training."""
        if self.panel is not None and (self.split.method not in ("auto", "column") or self.split.column != "split"):
            raise ValueError("data.split: with data.panel the split is the panel's backtest (data.panel.test_origins, "
                             "validation_origins); set data.split.method to auto and leave data.split.column as split")
        return self

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
    """The data.source values that are names, not paths."""
    return {SYNTHETIC, *ADAPTERS}
