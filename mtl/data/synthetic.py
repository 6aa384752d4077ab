"""A realistic synthetic e-commerce impression log with known ground truth.

Each row is one impression of an item to a user in a scenario (app surface). Labels follow the
purchase funnel: ``add_to_cart`` and ``purchase`` can only happen after a ``click``; a purchase
is likelier after an add-to-cart; ``dwell_seconds`` exists only on clicked impressions.

All labels are driven by latent user and item factors. Each task has its own item factor,
correlated with a shared one by ``task_correlation``, so the tasks are related but not copies:
exactly the setting in which multi-task models help. Items in one category share part of their
factor (and users in one segment), so those features carry signal for rare ids. Popularity of users and items is
heavy-tailed, as in real logs.

The true probability of every binary label given the row is written to ``p_<label>`` columns.
They are never features; evaluation uses them to report the oracle AUC (the best any model of
these features could reach, since the features determine the probabilities exactly).

Rows are produced in fixed-size chunks with per-chunk seeds, so output is identical for a seed
whatever the machine, and memory stays bounded for any row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.config import SyntheticConfig

CHUNK_ROWS = 1_000_000
DEVICES = ("ios", "android", "web")
START = pd.Timestamp("2026-01-05")  # a Monday: day-of-week effects line up with calendar days


@dataclass(frozen=True)
class World:
    """The latent structure shared by every chunk: who the users and items are."""

    user_weight: np.ndarray  # sampling probability per user (activity)
    user_segment: np.ndarray
    user_factor: np.ndarray  # (users, d)
    user_bias: np.ndarray
    item_weight: np.ndarray  # popularity
    item_category: np.ndarray
    item_brand: np.ndarray
    item_price: np.ndarray
    item_factor: dict[str, np.ndarray]  # task -> (items, d)
    item_bias: np.ndarray
    scenario_effect: dict[str, np.ndarray]  # task -> (scenarios,)
    device_effect: np.ndarray
    hour_effect: np.ndarray
    weekday_effect: np.ndarray


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    rng.shuffle(w)  # ids carry no information about popularity
    return w / w.sum()


def build_world(cfg: SyntheticConfig) -> World:
    rng = np.random.default_rng(cfg.seed)
    d = cfg.latent_dim
    # Factors scaled so that <u, v> has unit variance.
    scale = d ** -0.25
    # Users belong to observable segments (think age band x region) that explain part of their
    # taste, as items belong to categories and brands: a model can learn a segment's or a
    # category's preferences from far fewer rows than an individual user's.
    user_segment = rng.integers(0, cfg.user_segments, cfg.users)
    segment_factor = rng.normal(0.0, scale, (cfg.user_segments, d))
    user_factor = 0.75 * segment_factor[user_segment] + 0.66 * rng.normal(0.0, scale, (cfg.users, d))
    category_factor = rng.normal(0.0, scale, (cfg.categories, d))
    item_category = rng.integers(0, cfg.categories, cfg.items)
    item_brand = rng.integers(0, cfg.brands, cfg.items)
    brand_factor = rng.normal(0.0, scale, (cfg.brands, d))
    own = rng.normal(0.0, scale, (cfg.items, d))
    shared = 0.6 * category_factor[item_category] + 0.4 * brand_factor[item_brand] + 0.69 * own
    rho = cfg.task_correlation
    item_factor = {}
    for task in ("click", "add_to_cart", "purchase", "dwell"):
        specific = 0.6 * category_factor[rng.permutation(cfg.categories)][item_category] + 0.8 * rng.normal(
            0.0, scale, (cfg.items, d)
        )
        item_factor[task] = rho * shared + np.sqrt(1.0 - rho**2) * specific
    category_price = rng.normal(3.5, 0.8, cfg.categories)
    item_price = np.exp(category_price[item_category] + rng.normal(0.0, 0.5, cfg.items)).round(2)
    n_s = len(cfg.scenarios)
    hours = np.arange(24)
    return World(
        user_weight=_zipf_weights(cfg.users, 0.8, rng),
        user_segment=user_segment,
        user_factor=user_factor,
        user_bias=rng.normal(0.0, 0.4, cfg.users),
        item_weight=_zipf_weights(cfg.items, 1.05, rng),
        item_category=item_category,
        item_brand=item_brand,
        item_price=item_price,
        item_factor=item_factor,
        item_bias=rng.normal(0.0, 0.3, cfg.items),
        scenario_effect={t: rng.normal(0.0, 0.35, n_s) for t in ("click", "add_to_cart", "purchase")},
        device_effect=np.array([0.15, 0.0, -0.2]),
        hour_effect=0.25 * np.sin((hours - 14) / 24 * 2 * np.pi),
        weekday_effect=np.array([0.0, -0.05, -0.05, 0.0, 0.05, 0.2, 0.25]),  # weekend browsing
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _affinity(world: World, task: str, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", world.user_factor[users], world.item_factor[task][items])


def generate_chunk(cfg: SyntheticConfig, world: World, chunk: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng([cfg.seed, chunk])
    users = rng.choice(cfg.users, rows, p=world.user_weight)
    items = rng.choice(cfg.items, rows, p=world.item_weight)
    scenario = rng.integers(0, len(cfg.scenarios), rows)
    device = rng.choice(len(DEVICES), rows, p=[0.45, 0.4, 0.15])
    day = rng.integers(0, cfg.days, rows)
    seconds = rng.integers(0, 86_400, rows)
    hour = seconds // 3600
    position = np.minimum(rng.geometric(0.12, rows), 50)
    price = world.item_price[items]
    log_price_z = (np.log(price) - 3.5) / 0.9

    weekday = (START.dayofweek + day) % 7
    context = world.device_effect[device] + world.hour_effect[hour] + world.weekday_effect[weekday]
    click_logit = (
        -3.4
        + 1.3 * _affinity(world, "click", users, items)
        + world.user_bias[users]
        + world.item_bias[items]
        + world.scenario_effect["click"][scenario]
        + context
        - 0.35 * np.log(position)
    )
    cart_logit = (
        -1.9
        + 1.4 * _affinity(world, "add_to_cart", users, items)
        + world.scenario_effect["add_to_cart"][scenario]
        - 0.3 * log_price_z
    )
    purchase_logit = (
        -3.6
        + 1.5 * _affinity(world, "purchase", users, items)
        + world.scenario_effect["purchase"][scenario]
        - 0.5 * log_price_z
        + 0.5 * world.user_bias[users]
    )
    p_click = _sigmoid(click_logit)
    q_cart = _sigmoid(cart_logit)
    q_buy_after_cart = _sigmoid(purchase_logit + 1.8)
    q_buy_no_cart = _sigmoid(purchase_logit)

    click = rng.random(rows) < p_click
    cart = click & (rng.random(rows) < q_cart)
    q_buy = np.where(cart, q_buy_after_cart, q_buy_no_cart)
    purchase = click & (rng.random(rows) < q_buy)
    log_dwell = 3.0 + 0.45 * _affinity(world, "dwell", users, items) + 0.3 * cart + rng.normal(0.0, 0.5, rows)
    dwell = np.where(click, np.exp(log_dwell).round(1), np.nan)

    # Microseconds from a stream of their own (the other columns stay what they were): whole
    # seconds would make (user, item, scenario, ts) repeat by chance, and it is the log's key.
    micros = np.random.default_rng([cfg.seed, chunk, 1]).integers(0, 1_000_000, rows)
    ts = START + pd.to_timedelta((day * 86_400 + seconds) * 1_000_000 + micros, unit="us")
    return pd.DataFrame(
        {
            "ts": ts,
            "user_id": users.astype(np.int64),
            "user_segment": world.user_segment[users].astype(np.int64),
            "item_id": items.astype(np.int64),
            "category_id": world.item_category[items].astype(np.int64),
            "brand_id": world.item_brand[items].astype(np.int64),
            "scenario": np.asarray(cfg.scenarios, dtype=object)[scenario],
            "device": np.asarray(DEVICES, dtype=object)[device],
            "hour": hour.astype(np.int64),
            "weekday": weekday.astype(np.int64),
            "position": position.astype(np.int64),
            "price": price,
            "click": click.astype(np.int8),
            "add_to_cart": cart.astype(np.int8),
            "purchase": purchase.astype(np.int8),
            "dwell_seconds": dwell,
            "p_click": p_click,
            "p_add_to_cart": p_click * q_cart,
            "p_purchase": p_click * (q_cart * q_buy_after_cart + (1.0 - q_cart) * q_buy_no_cart),
        }
    )


def iter_chunks(cfg: SyntheticConfig):
    """Yield the log as DataFrames of at most CHUNK_ROWS rows."""
    world = build_world(cfg)
    done, chunk = 0, 0
    while done < cfg.rows:
        n = min(CHUNK_ROWS, cfg.rows - done)
        yield generate_chunk(cfg, world, chunk, n)
        done += n
        chunk += 1


def generate(cfg: SyntheticConfig) -> pd.DataFrame:
    """The whole log in memory (tests, small sizes)."""
    return pd.concat(list(iter_chunks(cfg)), ignore_index=True)


def write(cfg: SyntheticConfig, path: Path) -> int:
    """Stream the log to one parquet file; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    writer = None
    rows = 0
    try:
        for frame in iter_chunks(cfg):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)  # atomic: a killed run never leaves a half-written log behind
    return rows
