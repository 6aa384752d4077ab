"""A realistic synthetic supply-chain daily panel with known ground truth.

Each row is one series (an item in a warehouse) on one day: the item's price and promotion, the
stock on the shelf that morning, what was sold, received and ordered, and the order's lead time.
Every item is stocked in every warehouse, and every series has a row on every day.

Demand is exogenous: its mean (``expected_demand``) is the exponential of an item level, a
warehouse level, an item x warehouse affinity (latent factors), an item trend, a weekly profile
of the item's category, a yearly cycle (the item's amplitude, the category's phase), the item's
price elasticity times the log of its price over its reference price, a promotion lift and a
calendar lift (holidays and the run-up to Christmas). Demand itself is negative binomial
(gamma-Poisson, an item dispersion), so it is noisier than Poisson and often zero for the
intermittent items (``intermittent_share``, 0.05-0.5 units a day). Promotions come in runs of
several days at 10-40% off; prices also change for good now and then.

Sales are demand censored by stock: ``units_sold = min(demand, stock_on_hand)``, as in real
panels, where a stock-out hides the demand it lost. Stock follows a periodic-review order-up-to
policy, as many retailers run it: every ``review_days`` days (a staggered weekday per series) a
series orders up to its recent *sales* rate times the supplier's promised lead time plus the
review period, times a safety factor of its own. Planning from sales, not demand, is what real
planners can do, and it lets a short-stocked series spiral down; some series are planned too
tight, so stock-outs happen on a few percent of days. Each supplier promises a lead time (3-14
days) and delivers late by a delay whose mean is its own and longer in November-January (now
and then a day early); deliveries arrive on the morning of their day. A burn-in before ``start``
is simulated and not written, so the first written days are already in steady state.

The truth columns are never features: ``demand`` (uncensored), ``expected_demand``,
``p_stockout`` (the probability, under that day's demand distribution, that demand reaches the
morning's stock: the day ends empty) and ``p_late`` (that the order placed that day arrives after
its promised lead time).

Series are produced in fixed-size chunks with per-chunk seeds (item-level paths such as prices
from per-item seeds), so output is identical for a seed whatever the machine, and memory stays
bounded for any number of series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import SupplyChainConfig

CHUNK_SERIES = 256  # series simulated together (their rows are written together)
BURN_IN_DAYS = 90  # simulated before `start` and not written: stock and orders settle first
SALES_WINDOW = 28  # days of sales whose mean is the planner's demand rate
MIN_STOCK = 3  # the lowest order-up-to level: no series is planned to be empty
MAX_DELAY = 21  # days a delivery can be late at most
PEAK_MONTHS = (11, 12, 1)  # suppliers are slower in the year-end peak ...
PEAK_DELAY = 2.0  # ... by this factor on their mean delay
PRICE_CHANGE_RATE = 1 / 180  # chance per day that an item's regular price changes for good
PROMO_DAYS = (3, 10)  # shortest and longest promotion run
# Log-lift of the calendar's event days (month * 100 + day); Mother's Day, Black Friday and Cyber
# Monday move with the calendar and are found in _calendar.
EVENTS = {101: -0.5, 214: 0.3, 1224: 0.4, 1225: -0.9, 1226: 0.4, 1231: 0.2}
MOTHERS_DAY, BLACK_FRIDAY, CYBER_MONDAY = 0.3, 0.9, 0.6
CHRISTMAS_RAMP = 0.6  # log-lift reached on 23 December, rising from 1 December
COLUMNS = ("date", "item_id", "warehouse_id", "category_id", "supplier_id", "price", "promo", "holiday",
           "stock_on_hand", "units_received", "on_order", "units_sold", "stockout", "order_units",
           "promised_lead_days", "order_lead_days", "order_late", "demand", "expected_demand", "p_stockout",
           "p_late")


@dataclass(frozen=True)
class World:
    """The latent structure shared by every chunk: items, warehouses, categories, suppliers."""

    item_category: np.ndarray
    item_supplier: np.ndarray
    intermittent: np.ndarray  # (items,) bool: sparse, mostly-zero demand
    item_level: np.ndarray  # log of the item's base demand a day
    warehouse_level: np.ndarray
    item_factor: np.ndarray  # (items, d)
    warehouse_factor: np.ndarray  # (warehouses, d)
    item_trend: np.ndarray  # log-change a day
    weekly: np.ndarray  # (categories, 7) log-effect by weekday, Monday first
    item_yearly: np.ndarray  # amplitude of the yearly cycle
    category_phase: np.ndarray
    elasticity: np.ndarray  # d log demand / d log price, in [-3, -0.5]
    reference_price: np.ndarray
    promo_lift: np.ndarray  # log-lift of being on promotion, beyond the discount itself
    dispersion: np.ndarray  # negative binomial shape: variance = mean + mean^2 / dispersion
    holiday_sensitivity: np.ndarray  # (categories,) multiplies the calendar's lift
    promised_lead: np.ndarray  # (suppliers,) days
    supplier_delay: np.ndarray  # (suppliers,) mean delay in days outside the peak
    supplier_early: np.ndarray  # (suppliers,) chance of a delivery a day early


def build_world(cfg: SupplyChainConfig) -> World:
    rng = np.random.default_rng(cfg.seed)
    n, c, d = cfg.items, cfg.categories, cfg.latent_dim
    item_category = rng.integers(0, c, n)
    intermittent = rng.random(n) < cfg.intermittent_share
    # Regular items: log-normal across items, a median of 4 units a day and a long tail of
    # bestsellers; intermittent ones sell 0.05-0.5 units a day.
    level = np.where(intermittent, rng.uniform(np.log(0.05), np.log(0.5), n),
                     np.minimum(rng.normal(np.log(4.0), 1.1, n), np.log(400.0)))
    scale = (0.09 / d) ** 0.25  # the affinity <item, warehouse> has a standard deviation of 0.3
    common_week = np.array([-0.06, -0.1, -0.06, 0.0, 0.1, 0.2, -0.08])  # Friday and Saturday shopping
    weekly = common_week + rng.normal(0.0, 0.08, (c, 7))
    category_price = rng.normal(3.0, 0.8, c)
    return World(
        item_category=item_category,
        item_supplier=rng.integers(0, cfg.suppliers, n),
        intermittent=intermittent,
        item_level=level,
        warehouse_level=rng.normal(0.0, 0.3, cfg.warehouses),
        item_factor=rng.normal(0.0, scale, (n, d)),
        warehouse_factor=rng.normal(0.0, scale, (cfg.warehouses, d)),
        item_trend=rng.normal(0.0, 0.25, n) / 365.0,
        weekly=weekly - weekly.mean(axis=1, keepdims=True),
        item_yearly=np.minimum(rng.gamma(2.0, 0.1, n), 0.8),
        category_phase=rng.uniform(0.0, 2 * np.pi, c),
        elasticity=rng.uniform(-3.0, -0.5, n),
        reference_price=np.maximum(0.5, np.exp(category_price[item_category] + rng.normal(0.0, 0.4, n))).round(2),
        promo_lift=rng.uniform(0.05, 0.5, n),
        dispersion=np.where(intermittent, rng.uniform(0.3, 1.5, n), rng.lognormal(np.log(4.0), 0.6, n)),
        holiday_sensitivity=rng.uniform(0.2, 1.2, c),
        promised_lead=rng.integers(3, 15, cfg.suppliers),
        supplier_delay=rng.gamma(1.2, 0.35, cfg.suppliers),
        supplier_early=rng.uniform(0.0, 0.08, cfg.suppliers),
    )


def _black_friday(dates: pd.DatetimeIndex) -> np.ndarray:
    """The day after the fourth Thursday of November."""
    return np.asarray((dates.month == 11) & (dates.dayofweek == 4) & (dates.day >= 23) & (dates.day <= 29))


def _calendar(cfg: SupplyChainConfig) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """(every simulated date, burn-in first; holiday flag; calendar log-lift) of the dates."""
    dates = pd.date_range(pd.Timestamp(cfg.start) - pd.Timedelta(days=BURN_IN_DAYS),
                          periods=BURN_IN_DAYS + cfg.days, freq="D")
    month_day = np.asarray(dates.month * 100 + dates.day)
    lift = np.array([EVENTS.get(md, 0.0) for md in month_day])
    holiday = np.isin(month_day, list(EVENTS))
    floating = {
        MOTHERS_DAY: np.asarray((dates.month == 5) & (dates.dayofweek == 6) & (dates.day >= 8) & (dates.day <= 14)),
        BLACK_FRIDAY: _black_friday(dates),
        CYBER_MONDAY: _black_friday(dates - pd.Timedelta(days=3)),
    }
    for effect, on in floating.items():
        lift += effect * on
        holiday |= on
    ramp = np.asarray((dates.month == 12) & (dates.day < 24))
    lift += np.where(ramp, CHRISTMAS_RAMP * np.asarray(dates.day) / 23, 0.0)
    return dates, holiday, lift


def _promo_runs(rng: np.random.Generator, share: float, days: int) -> np.ndarray:
    """Each day's discount (0 off promotion): runs of PROMO_DAYS days at 10-40% off, separated by
    geometric gaps sized so that ``share`` of the days are on promotion."""
    if share <= 0.0:
        return np.zeros(days)
    mean_run = sum(PROMO_DAYS) / 2
    gap_mean = mean_run * (1.0 - share) / share
    k = 2 * int(days * share / mean_run) + 8  # more runs than the days can hold, almost surely
    gaps = rng.geometric(1.0 / (1.0 + gap_mean), k) - 1
    lengths = rng.integers(PROMO_DAYS[0], PROMO_DAYS[1] + 1, k)
    discount = rng.uniform(0.10, 0.40, k)
    ends = np.cumsum(gaps + lengths)
    run = np.minimum(np.searchsorted(ends, np.arange(days), side="right"), k - 1)
    on = np.arange(days) >= ends[run] - lengths[run]
    return np.where(on & (np.arange(days) < ends[run]), discount[run], 0.0)


def item_prices(cfg: SupplyChainConfig, world: World, items: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(price, discount) of each item on each simulated day, (items, days) each. Every item has a
    random stream of its own, so its prices are the same in whichever chunk its series fall."""
    price = np.empty((len(items), days))
    discount = np.empty((len(items), days))
    for row, item in enumerate(items):
        rng = np.random.default_rng([cfg.seed, 1, int(item)])
        changes = np.where(rng.random(days) < PRICE_CHANGE_RATE, rng.normal(0.02, 0.08, days), 0.0)
        discount[row] = _promo_runs(rng, cfg.promo_share, days)
        regular = world.reference_price[item] * np.exp(np.cumsum(changes))
        price[row] = np.maximum(0.01, np.round(regular * (1.0 - discount[row]), 2))
    return price, discount


def expected_demand(world: World, items: np.ndarray, warehouses: np.ndarray, dates: pd.DatetimeIndex,
                    calendar_lift: np.ndarray, price: np.ndarray, promo: np.ndarray) -> np.ndarray:
    """The mean demand of each series (rows) on each date (columns); no randomness here."""
    cat = world.item_category[items]
    t = np.asarray((dates - dates[BURN_IN_DAYS]).days, dtype=float)  # days since start
    year_angle = 2 * np.pi * np.asarray(dates.dayofyear) / 365.25
    affinity = np.einsum("sd,sd->s", world.item_factor[items], world.warehouse_factor[warehouses])
    log_mean = (
        (world.item_level[items] + world.warehouse_level[warehouses] + affinity)[:, None]
        + world.item_trend[items][:, None] * t
        + world.weekly[cat[:, None], np.asarray(dates.dayofweek)[None, :]]
        + world.item_yearly[items][:, None] * np.sin(year_angle + world.category_phase[cat][:, None])
        + world.elasticity[items][:, None] * np.log(price / world.reference_price[items][:, None])
        + world.promo_lift[items][:, None] * promo
        + world.holiday_sensitivity[cat][:, None] * calendar_lift
    )
    return np.exp(log_mean)


def lead_times(world: World, suppliers: np.ndarray, months: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(realised lead, probability of being late) of an order placed by each series on each day.
    Drawn for every day, ordered or not, so a series' draws do not depend on its orders."""
    promised = world.promised_lead[suppliers][:, None]
    mean_delay = world.supplier_delay[suppliers][:, None] * np.where(np.isin(months, PEAK_MONTHS), PEAK_DELAY, 1.0)
    early_chance = world.supplier_early[suppliers][:, None]
    early = rng.random(mean_delay.shape) < early_chance
    delay = np.minimum(rng.poisson(mean_delay), MAX_DELAY)
    lead = np.where(early, promised - 1, promised + delay)
    # late = not early and a delay of a day or more (the cap at MAX_DELAY does not change that)
    return lead, (1.0 - early_chance) * (1.0 - np.exp(-mean_delay))


@dataclass
class Inventory:
    """The simulated days of a chunk's series, (series, days) each."""

    stock_on_hand: np.ndarray
    units_received: np.ndarray
    on_order: np.ndarray
    units_sold: np.ndarray
    order_units: np.ndarray


def simulate(demand: np.ndarray, rate: np.ndarray, promised: np.ndarray, lead: np.ndarray, review_days: int,
             rng: np.random.Generator) -> Inventory:
    """Run the periodic-review order-up-to policy over the days, all series at once.

    ``rate`` is the planner's first estimate of each series' demand a day (its sales window
    starts full of it); from then on the planner sees only sales.
    """
    n, days = demand.shape
    safety = np.exp(rng.normal(np.log(1.8), 0.3, n))  # some series are planned too tight
    offset = rng.integers(0, review_days, n)
    cover = (promised + review_days) * safety
    window = np.repeat(rate[:, None], SALES_WINDOW, axis=1)
    window_sum = window.sum(axis=1)
    stock = np.maximum(MIN_STOCK, np.ceil(rate * cover)).astype(np.int64)
    on_order = np.zeros(n, np.int64)
    arrivals = np.zeros((n, days + int(lead.max(initial=0)) + 1), np.int64)
    out = Inventory(*(np.zeros((n, days), np.int64) for _ in range(5)))
    rows = np.arange(n)
    for t in range(days):
        received = arrivals[:, t]
        stock += received
        on_order -= received
        out.units_received[:, t], out.stock_on_hand[:, t], out.on_order[:, t] = received, stock, on_order
        sold = np.minimum(demand[:, t], stock)
        out.units_sold[:, t] = sold
        stock -= sold
        slot = t % SALES_WINDOW
        window_sum += sold - window[:, slot]
        window[:, slot] = sold
        target = np.maximum(MIN_STOCK, np.ceil(window_sum / SALES_WINDOW * cover))
        due = (t + offset) % review_days == 0
        order = np.where(due, np.maximum(0, target - stock - on_order), 0).astype(np.int64)
        placed = rows[order > 0]
        arrivals[placed, t + lead[placed, t]] += order[placed]
        on_order += order
        out.order_units[:, t] = order
    return out


def generate_chunk(cfg: SupplyChainConfig, world: World, chunk: int) -> pd.DataFrame:
    """The rows of series [chunk * CHUNK_SERIES, ...): sorted by item, warehouse, date."""
    from scipy.stats import nbinom

    rng = np.random.default_rng([cfg.seed, chunk])
    series = np.arange(chunk * CHUNK_SERIES, min((chunk + 1) * CHUNK_SERIES, cfg.items * cfg.warehouses))
    items, warehouses = series // cfg.warehouses, series % cfg.warehouses
    dates, holiday, calendar_lift = _calendar(cfg)
    chunk_items, item_row = np.unique(items, return_inverse=True)
    price, discount = (a[item_row] for a in item_prices(cfg, world, chunk_items, len(dates)))
    promo = discount > 0
    mean = expected_demand(world, items, warehouses, dates, calendar_lift, price, promo)
    k = world.dispersion[items][:, None]
    demand = rng.negative_binomial(k, k / (k + mean))
    suppliers = world.item_supplier[items]
    lead, p_late = lead_times(world, suppliers, np.asarray(dates.month), rng)
    promised = world.promised_lead[suppliers]
    sim = simulate(demand, mean[:, 0], promised, lead, cfg.review_days, rng)
    keep = slice(BURN_IN_DAYS, None)
    p_stockout = nbinom.sf(sim.stock_on_hand[:, keep] - 1, k, k / (k + mean[:, keep]))
    ordered = sim.order_units[:, keep] > 0
    lead_days = np.where(ordered, lead[:, keep], np.nan)
    columns = {
        "price": price[:, keep].astype(np.float32),
        "promo": promo[:, keep].astype(np.int8),
        "holiday": np.broadcast_to(holiday[keep], ordered.shape).astype(np.int8),
        **{name: getattr(sim, name)[:, keep].astype(np.int32)
           for name in ("stock_on_hand", "units_received", "on_order", "units_sold")},
        "stockout": (sim.stock_on_hand[:, keep] == sim.units_sold[:, keep]).astype(np.int8),
        "order_units": sim.order_units[:, keep].astype(np.int32),
        "promised_lead_days": np.broadcast_to(promised[:, None], ordered.shape).astype(np.int16),
        "order_lead_days": lead_days.astype(np.float32),
        "order_late": np.where(ordered, lead_days > promised[:, None], np.nan).astype(np.float32),
        "demand": demand[:, keep].astype(np.int32),
        "expected_demand": mean[:, keep].astype(np.float32),
        "p_stockout": p_stockout.astype(np.float32),
        "p_late": np.where(ordered, p_late[:, keep], np.nan).astype(np.float32),
    }
    return _frame(world, items, warehouses, dates[keep], columns)


def _frame(world: World, items: np.ndarray, warehouses: np.ndarray, dates: pd.DatetimeIndex,
           columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per series and date, from (series, dates) arrays."""
    days = len(dates)
    ids = {
        "date": np.tile(dates.to_numpy(dtype="datetime64[ns]"), len(items)),
        "item_id": np.repeat(items, days).astype(np.int64),
        "warehouse_id": np.repeat(warehouses, days).astype(np.int64),
        "category_id": np.repeat(world.item_category[items], days).astype(np.int64),
        "supplier_id": np.repeat(world.item_supplier[items], days).astype(np.int64),
    }
    frame = pd.DataFrame(ids | {name: values.reshape(-1) for name, values in columns.items()})
    return frame[list(COLUMNS)]


def iter_chunks(cfg: SupplyChainConfig):
    """Yield the panel as DataFrames of CHUNK_SERIES series (the last may hold fewer)."""
    world = build_world(cfg)
    series = cfg.items * cfg.warehouses
    for chunk in range(-(-series // CHUNK_SERIES)):
        yield generate_chunk(cfg, world, chunk)


def generate(cfg: SupplyChainConfig) -> pd.DataFrame:
    """The whole panel in memory (tests, small sizes)."""
    return pd.concat(list(iter_chunks(cfg)), ignore_index=True)


def write(cfg: SupplyChainConfig, path: Path) -> int:
    """Stream the panel to one parquet file; returns the row count."""
    from mtl.data.ingest.parquet import write_frames

    return write_frames(iter_chunks(cfg), path)
