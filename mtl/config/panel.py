"""The ``data.panel`` section: a daily panel (one row per series and day) framed into forecast
examples, one per series and forecast origin (see mtl/data/features/framing.py)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from mtl.config.base import Frozen, PositiveInt


class OrdersConfig(Frozen):
    """The panel's replenishment orders, for the late-delivery label: on the day an order is
    placed, how many units, the lead time the supplier promised, and the lead time it took."""

    placed: str = "order_units"  # units ordered that day (0: no order)
    promised: str = "promised_lead_days"
    lead: str = "order_lead_days"  # realised; known only once the order arrives (never a feature)
    label: str = "late_open_order"  # 1: an order open at the origin arrives after its promised day


class PanelConfig(Frozen):
    """How a daily panel becomes forecast examples. An example is one series at one origin (the
    last day whose data it may use): its features come from the origin's day and the
    ``lookback`` days up to it (and the ``known`` columns of the horizon, which are planned in
    advance), its labels from the ``horizon`` days after it."""

    series: tuple[str, ...]  # the columns that name a series, e.g. [item_id, warehouse_id]
    time: str = "date"  # one row per series and day, every day present
    # label -> daily column summed over the horizon, e.g. {demand: units_sold}
    sums: dict[str, str] = Field(default_factory=dict)
    # label -> daily 0/1 column: 1 when any day of the horizon has it, e.g. {stockout_next: stockout}
    events: dict[str, str] = Field(default_factory=dict)
    orders: OrdersConfig | None = None  # the late-delivery label and its features; null: none
    # daily columns whose last `lookback` days are features, <col>_lag<k> (k=1: the origin's day)
    history: tuple[str, ...] = ()
    # daily columns known in advance (planned prices and promotions, the calendar): their horizon
    # days are features, <col>_ahead<k> (k=1: the day after the origin)
    known: tuple[str, ...] = ()
    static: tuple[str, ...] = ()  # per-series columns carried to every example (their origin-day value)
    # daily column -> the column it can never exceed, checked by the data contract: sales are
    # censored by the stock on hand, e.g. {units_sold: stock_on_hand}
    capacity: dict[str, str] = Field(default_factory=dict)
    # label -> daily truth column (synthetic data): summed for a sums label; for an events label
    # 1 - prod(1 - p) over the horizon (an optimistic oracle: it knows the horizon's stock)
    truth: dict[str, str] = Field(default_factory=dict)
    lookback: PositiveInt = 56
    horizon: PositiveInt = 7
    # days between a series' origins; series are staggered so that every weekday is an origin
    origin_every: PositiveInt = 7
    # The backtest: the last `test_origins` origins of every series are the test, the
    # `validation_origins` before them validation; no training or validation label reaches past
    # the next split's first origin (a gap of `horizon` days), so no split sees another's future.
    test_origins: PositiveInt = 4
    validation_origins: PositiveInt = 2

    @model_validator(mode="after")
    def _consistent(self) -> "PanelConfig":
        if not self.series:
            raise ValueError("series: name the column(s) that identify a series, e.g. [item_id, warehouse_id]")
        labels = [*self.sums, *self.events, *([self.orders.label] if self.orders else [])]
        if not labels:
            raise ValueError("name at least one label: sums (e.g. {demand: units_sold}), events or orders")
        if len(set(labels)) != len(labels):
            raise ValueError(f"a label is named twice among sums, events and orders: {labels}")
        for label in self.truth:
            if label not in self.sums and label not in self.events:
                raise ValueError(f"truth names {label!r}, which is not a sums or events label")
        if self.time in self.series or self.time in self.history or self.time in self.static:
            raise ValueError(f"time column {self.time!r} cannot also be a series, history or static column")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.sums, *self.events, *((self.orders.label,) if self.orders else ()))

    # What framing adds to every example besides the labels (mtl/data/features/framing.py).
    CALENDAR: ClassVar[tuple[str, ...]] = ("origin_weekday", "origin_month")
    ORDER_FEATURES: ClassVar[tuple[str, ...]] = ("open_orders", "open_units", "overdue_days")

    @property
    def generated_numeric(self) -> tuple[str, ...]:
        """The numeric features framing makes: lags, the horizon's planned values, open orders."""
        lags = (f"{c}_lag{k}" for c in self.history for k in range(1, self.lookback + 1))
        ahead = (f"{c}_ahead{k}" for c in self.known for k in range(1, self.horizon + 1))
        return (*lags, *ahead, *(self.ORDER_FEATURES if self.orders else ()))

    SEASON: ClassVar[int] = 7  # seasonal naive: the same weekday a week earlier

    @property
    def reference(self) -> tuple[str, ...]:
        """What framing adds beside each sums label for evaluation only (never features): the
        seasonal-naive forecast of the horizon, and the series' in-sample seasonal-naive daily
        error over the training days (the scale of MASE and RMSSE)."""
        return tuple(f"{kind}_{label}" for label in self.sums for kind in ("naive", "scale_mae", "scale_mse"))

    def daily_columns(self) -> tuple[str, ...]:
        """The panel's per-day columns framing reads (truth last)."""
        cols = [*self.sums.values(), *self.events.values(), *self.history, *self.known,
                *self.capacity, *self.capacity.values()]
        if self.orders is not None:
            cols += [self.orders.placed, self.orders.promised, self.orders.lead]
        return tuple(dict.fromkeys([*cols, *self.truth.values()]))
