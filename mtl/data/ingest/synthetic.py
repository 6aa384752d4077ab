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

Two further kinds of column describe what a large model reads (both off with their knob, and
drawn from random streams of their own, so every other column is the same with or without them):

- ``hist_item_ids`` / ``hist_category_ids``: the user's last ``history_length`` clicks before
  the impression, oldest first (and their times in ``hist_ts`` with ``history_times``: off by
  default, as they would triple the file). They come from the user's behaviour across the
  whole site (clicks on items the log never shows, from ``history_days`` before the log starts)
  plus the log's own clicks, and never include the impression itself or anything at or after its
  time. Site-wide clicks follow the same click model as the log (the best of a page of popular
  items, by the user's affinity), so a history reveals the user's taste: for the many users seen
  a handful of times, far more than their id can.
- ``title``: the item's title: its brand, attribute words and category name, plus filler words.
  The attribute words are the ones closest to the item's own latent factor and its quality, so a
  title says something about a rarely shown item that its id cannot.

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
    item_own: np.ndarray  # (items, d): the part of an item's factor neither category nor brand explains


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
        item_own=own,
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
    click_logit, cart_logit, purchase_logit = _logits(world, users, items, scenario, position, log_price_z, context)
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


def _logits(world: World, users: np.ndarray, items: np.ndarray, scenario: np.ndarray, position: np.ndarray,
            log_price_z: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true logits of click, add-to-cart given click, and purchase (no randomness here)."""
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
    return click_logit, cart_logit, purchase_logit


# ---------------------------------------------------------------------------------------------
# Item titles

_KINDS = ("men's", "women's", "kids", "outdoor", "smart", "kitchen", "travel", "office", "garden", "sports",
          "baby", "car")
_NOUNS = ("shoes", "jacket", "phone case", "headphones", "backpack", "water bottle", "lamp", "blender", "watch",
          "sunglasses", "t-shirt", "jeans", "sofa cover", "pillow", "tent", "bicycle light", "camera bag",
          "keyboard", "mouse", "charger", "speaker", "mug", "knife set", "frying pan", "yoga mat", "dumbbells",
          "scarf", "gloves", "socks", "wallet", "perfume", "lipstick", "shampoo", "toothbrush", "umbrella",
          "notebook", "pen set", "desk chair", "plant pot", "dog bed")
# The words that carry information: each has a direction in the latent space, and an item's title
# has the ones its own factor points to most.
_ATTRIBUTES = ("waterproof", "lightweight", "wireless", "organic", "vintage", "compact", "ergonomic", "durable",
               "foldable", "portable", "handmade", "slim", "oversized", "breathable", "insulated", "rechargeable",
               "adjustable", "stainless", "bamboo", "cotton", "leather", "silk", "wooden", "ceramic", "magnetic",
               "solar", "recycled", "minimalist", "luxury", "classic", "sporty", "retro", "heavy-duty",
               "noise-cancelling", "quick-dry", "anti-slip", "reversible", "scented", "transparent", "glossy")
_QUALITY = (("clearance", "budget", "basic"), ("bestseller", "top rated", "premium quality"))
_FILLER = ("new", "2026", "sale", "free shipping", "gift", "set", "pack", "original", "official", "hot deal",
           "limited edition", "fast delivery")
_SYLLABLES = ("ka", "lo", "vi", "ren", "to", "mi", "sa", "zor", "el", "na", "qu", "dex", "ta", "ri", "bo", "lux",
              "fi", "no", "ar", "gen", "po", "li", "ven", "ox", "ma", "tri", "sol", "ne", "ka", "ro")


def titles(cfg: SyntheticConfig, world: World) -> np.ndarray:
    """One title per item (an object array of strings), from a random stream of its own."""
    rng = np.random.default_rng([cfg.seed, 101])
    pairs = [f"{k} {n}" for k in _KINDS for n in _NOUNS]
    order = rng.permutation(len(pairs))
    category_name = [pairs[order[c % len(pairs)]] + ("" if c < len(pairs) else f" {c // len(pairs)}")
                     for c in range(cfg.categories)]
    brand_name, taken = [], set()
    for b in range(cfg.brands):
        name = "".join(rng.choice(_SYLLABLES, rng.integers(2, 4))).capitalize()
        brand_name.append(name if name not in taken else f"{name}{b}")
        taken.add(brand_name[-1])
    directions = rng.normal(0.0, 1.0, (len(_ATTRIBUTES), world.item_own.shape[1]))
    # The two attributes the item's own factor points to most (with some noise: titles are
    # written by sellers, not read off the latent space).
    score = world.item_own @ directions.T / np.linalg.norm(world.item_own, axis=1, keepdims=True).clip(1e-9)
    top = np.argsort(-(score + rng.gumbel(0.0, 0.3, score.shape)), axis=1)[:, :2]
    low, high = np.quantile(world.item_bias, [1 / 3, 2 / 3])
    tier = np.where(world.item_bias < low, 0, np.where(world.item_bias > high, 1, -1))
    tier = np.where(rng.random(len(tier)) < 0.15, rng.integers(-1, 2, len(tier)), tier)  # some sellers oversell
    filler = rng.integers(0, len(_FILLER), len(tier))
    out = np.empty(len(tier), dtype=object)
    for i in range(len(tier)):
        words = [brand_name[world.item_brand[i]], _ATTRIBUTES[top[i, 0]], _ATTRIBUTES[top[i, 1]],
                 category_name[world.item_category[i]]]
        if tier[i] >= 0:
            words.append(_QUALITY[tier[i]][(i + filler[i]) % 3])
        words.append(_FILLER[filler[i]])
        out[i] = " ".join(words)
    return out


# ---------------------------------------------------------------------------------------------
# Behaviour histories

_PAGE = 20  # items on a page of the rest of the site: a user clicks the one they like best


def site_clicks(cfg: SyntheticConfig, world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, microseconds since START, item) of the users' clicks across the rest of the site,
    from ``history_days`` before the log starts to its end; a random stream of its own."""
    rng = np.random.default_rng([cfg.seed, 202])
    # Active users click more everywhere: a base rate plus a share of their expected impressions.
    expected = world.user_weight * cfg.rows
    per_user = rng.poisson(8.0 + 0.3 * expected * np.exp(0.5 * world.user_bias))
    users = np.repeat(np.arange(cfg.users), per_user)
    span = (cfg.history_days + cfg.days) * 86_400 * 1_000_000
    times = rng.integers(0, span, len(users)) - cfg.history_days * 86_400 * 1_000_000
    items = np.empty(len(users), dtype=np.int64)
    # Pages elsewhere on the site are less dominated by the bestsellers than the log's slots.
    page_weight = np.sqrt(world.item_weight) / np.sqrt(world.item_weight).sum()
    for lo in range(0, len(users), 100_000):  # bounded memory: (block, page, d) factors at once
        u = users[lo : lo + 100_000]
        page = rng.choice(cfg.items, (len(u), _PAGE), p=page_weight)
        utility = (1.3 * np.einsum("nd,npd->np", world.user_factor[u], world.item_factor["click"][page])
                   + world.item_bias[page] + rng.gumbel(0.0, 1.0, page.shape))
        items[lo : lo + 100_000] = page[np.arange(len(u)), utility.argmax(1)]
    return users.astype(np.int64), times.astype(np.int64), items


def _micros(ts: pd.Series) -> np.ndarray:
    return (ts - START).to_numpy(dtype="timedelta64[us]").astype(np.int64)


def attach_histories(frame: pd.DataFrame, events: tuple[np.ndarray, np.ndarray, np.ndarray], world: World,
                     length: int, with_times: bool = False) -> pd.DataFrame:
    """Add each row's last ``length`` click events of its user strictly before its ``ts``.

    ``events`` are (user, microseconds since START, item), sorted by user then time. One
    searchsorted over a (user, time) key finds, for every row at once, where its user's past ends.
    """
    import pyarrow as pa

    users, times, items = events
    origin = int(times.min(initial=0))
    width = int(max(times.max(initial=0), _micros(frame["ts"]).max(initial=0)) - origin + 1)
    if (int(users.max(initial=0)) + 1) * width >= 2**62:
        raise ValueError("too many users times too long a time span for the history key")
    key = users * width + (times - origin)
    row_user = frame["user_id"].to_numpy(dtype=np.int64)
    end = np.searchsorted(key, row_user * width + (_micros(frame["ts"]) - origin), side="left")  # strictly before
    first = np.searchsorted(users, row_user, side="left")
    n = np.minimum(end - first, length)
    offsets = np.concatenate([[0], np.cumsum(n)])
    idx = np.repeat(end - n, n) + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], n))
    hist_items = items[idx]

    def column(values: np.ndarray) -> pd.arrays.ArrowExtensionArray:
        return pd.arrays.ArrowExtensionArray(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                                                      pa.array(values)))

    out = frame.assign(hist_item_ids=column(hist_items),
                       hist_category_ids=column(world.item_category[hist_items].astype(np.int64)))
    if with_times:
        out["hist_ts"] = column((START + pd.to_timedelta(times[idx], unit="us")).to_numpy(dtype="datetime64[us]"))
    return out


def _click_events(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    clicked = frame["click"].to_numpy() == 1
    return (frame["user_id"].to_numpy(np.int64)[clicked], _micros(frame["ts"])[clicked],
            frame["item_id"].to_numpy(np.int64)[clicked])


def _sorted_events(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    users, times, items = (np.concatenate([p[k] for p in parts]) for k in range(3))
    order = np.lexsort((times, users))
    return users[order], times[order], items[order]


def iter_chunks(cfg: SyntheticConfig):
    """Yield the log as DataFrames of at most CHUNK_ROWS rows."""
    world = build_world(cfg)
    sizes = [min(CHUNK_ROWS, cfg.rows - lo) for lo in range(0, cfg.rows, CHUNK_ROWS)]
    item_titles = titles(cfg, world) if cfg.titles else None
    events = None
    cached = None
    if cfg.history_length:
        # A history holds clicks of every chunk: with several chunks, a first pass collects them
        # (regenerating a chunk is cheaper than keeping it).
        parts = [site_clicks(cfg, world)]
        for chunk, n in enumerate(sizes):
            frame = generate_chunk(cfg, world, chunk, n)
            parts.append(_click_events(frame))
            cached = frame if len(sizes) == 1 else None
        events = _sorted_events(parts)
    for chunk, n in enumerate(sizes):
        frame = cached if cached is not None else generate_chunk(cfg, world, chunk, n)
        if events is not None:
            frame = attach_histories(frame, events, world, cfg.history_length, cfg.history_times)
        if item_titles is not None:
            frame["title"] = item_titles[frame["item_id"].to_numpy()]
        yield frame


def generate(cfg: SyntheticConfig) -> pd.DataFrame:
    """The whole log in memory (tests, small sizes). History columns hold one numpy array per
    row, as pandas reads a parquet list column: that form survives a to_parquet / read_parquet
    round trip, which pandas' Arrow list dtype does not."""
    import pyarrow as pa

    frame = pd.concat(list(iter_chunks(cfg)), ignore_index=True)
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.ArrowDtype):
            frame[col] = pd.Series(pa.array(frame[col]).to_numpy(zero_copy_only=False), index=frame.index,
                                   dtype=object)
    return frame


def write(cfg: SyntheticConfig, path: Path) -> int:
    """Stream the log to one parquet file; returns the row count."""
    from mtl.data.ingest.parquet import write_frames

    return write_frames(iter_chunks(cfg), path)
