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


class InventoryConfig(Frozen):
    """The panel's stock, for the decision (mtl/evaluation/decision.py): an order placed at the
    origin arrives after the supplier's lead time, so it must cover the lead time plus the review
    period, less what is already on the shelf and on order."""

    on_hand: str = "stock_on_hand"  # the stock on the shelf that morning (after the day's receipts)
    sold: str = "units_sold"  # that day's sales
    on_order: str = "on_order"  # units ordered and not yet received that morning
    lead: str = "promised_lead_days"  # the lead time the supplier promises, in days

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.on_hand, self.sold, self.on_order, self.lead)


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
    # Longer horizons, in days from the origin: every sums and events label (and its truth) is
    # also framed over days 1..h as <label>_<h>d, e.g. demand_21d, the demand an order placed at
    # the origin must cover when the supplier takes two weeks and the next review is a week on.
    horizons: tuple[PositiveInt, ...] = ()
    # the stock at the origin, for the decision's lead time and inventory position; null: the
    # decision assumes an order arrives at once and the shelf starts empty
    inventory: InventoryConfig | None = None
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
        if any(h <= self.horizon for h in self.horizons) or len(set(self.horizons)) != len(self.horizons):
            raise ValueError(f"horizons: {list(self.horizons)} must be distinct and each longer than horizon "
                             f"({self.horizon}): the labels over the first horizon days are the unsuffixed ones")
        return self

    @property
    def span(self) -> int:
        """The longest horizon: how far after an origin its labels reach."""
        return max((self.horizon, *self.horizons))

    @property
    def label_horizons(self) -> dict[str, tuple[str, int]]:
        """Every sums and events label, at every horizon -> (the label it is framed from, its days)."""
        out = {}
        for base in (*self.sums, *self.events):
            out[base] = (base, self.horizon)
            out |= {f"{base}_{h}d": (base, h) for h in self.horizons}
        return out

    def horizon_of(self, label: str) -> int:
        return self.label_horizons[label][1]

    def is_sum(self, label: str) -> bool:
        """Whether ``label`` is a sums label at one of the horizons (a forecast of units)."""
        return label in self.label_horizons and self.label_horizons[label][0] in self.sums

    def truth_of(self, label: str) -> str | None:
        """The daily truth column a label at any horizon is framed from."""
        base = self.label_horizons.get(label, (label, 0))[0]
        return self.truth.get(base)

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.label_horizons, *((self.orders.label,) if self.orders else ()))

    @property
    def truth_labels(self) -> tuple[str, ...]:
        """The labels that have a truth column (framed as truth_<label>)."""
        return tuple(label for label in self.label_horizons if self.truth_of(label))

    # What framing adds to every example besides the labels (mtl/data/features/framing.py).
    CALENDAR: ClassVar[tuple[str, ...]] = ("origin_weekday", "origin_month")
    ORDER_FEATURES: ClassVar[tuple[str, ...]] = ("open_orders", "open_units", "overdue_days")

    @property
    def generated_numeric(self) -> tuple[str, ...]:
        """The numeric features framing makes: lags, the horizon's planned values, open orders."""
        lags = (f"{c}_lag{k}" for c in self.history for k in range(1, self.lookback + 1))
        ahead = (f"{c}_ahead{k}" for c in self.known for k in range(1, self.span + 1))
        return (*lags, *ahead, *(self.ORDER_FEATURES if self.orders else ()))

    SEASON: ClassVar[int] = 7  # seasonal naive: the same weekday a week earlier

    INVENTORY: ClassVar[tuple[str, ...]] = ("inventory_position", "lead_days")

    @property
    def reference(self) -> tuple[str, ...]:
        """What framing adds for evaluation only (never features): beside each sums label at each
        horizon the seasonal-naive forecast of it, and the series' in-sample seasonal-naive daily
        error over the training days (the scale of MASE and RMSSE); with inventory, the stock on
        the shelf and on order at the end of the origin's day and the supplier's lead time."""
        sums = tuple(f"{kind}_{label}" for label in self.label_horizons if self.is_sum(label)
                     for kind in ("naive", "scale_mae", "scale_mse"))
        return (*sums, *(self.INVENTORY if self.inventory else ()))

    def daily_columns(self) -> tuple[str, ...]:
        """The panel's per-day columns framing reads (truth last)."""
        cols = [*self.sums.values(), *self.events.values(), *self.history, *self.known,
                *self.capacity, *self.capacity.values()]
        if self.orders is not None:
            cols += [self.orders.placed, self.orders.promised, self.orders.lead]
        if self.inventory is not None:
            cols += self.inventory.columns
        return tuple(dict.fromkeys([*cols, *self.truth.values()]))
