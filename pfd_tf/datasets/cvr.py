"""Synthetic e-commerce worlds with privileged features, for PFD experiments.

Why this exists. Privileged Features Distillation (Xu et al., KDD 2020) needs
data where some features are known at training time but not at serving time.
For conversion-rate (CVR) prediction the paper's privileged features are what
the user does on the detail page *after* clicking (Section 3, Figure 3): dwell
time, viewing the comments, chatting with the seller, ... They are very
informative about the purchase, yet unavailable when ranking candidates
before any click. Real logs with such features are not public, so we simulate
a world that reproduces the two properties PFD relies on:

* Informative: every post-click signal is driven by the click's purchase
  intent ``z``, which includes an event-level part ``eps`` that no regular
  (serving-time) feature can see. A teacher seeing them can beat the student.
* Misleading on their own (Section 4's example): customers take longer to
  decide on expensive items, whose conversion rate is nevertheless low. Here
  log dwell time grows with log price regardless of intent while the purchase
  logit falls with price, so a privileged-only teacher (LUPI) over-predicts
  expensive items, while a teacher that also sees the regular features (PFD)
  can read dwell time *relative to the price*.

Generative story of the CVR scenario (one row per click, label = purchase)::

    mu(X) = a <u_taste, item_vec> + b quality - c sensitivity log(price / p0)
            + user, item/shop and device biases + base
    z     = mu(X) + eps,  eps ~ N(0, sigma_eps)
    purchase ~ Bernoulli(sigmoid(z))
    intent = (z - mean z) / std z
    log dwell = dwell_log_mean + alpha intent + beta log(price / p0) + noise
    viewed_comments, chatted_with_seller (pricey items), added_to_cart (mostly
    intent), images_viewed: Bernoulli / Poisson with intent and price in the logit

``base`` is solved so that the purchase rate equals ``CvrWorld.purchase_rate``.
All sizes and coefficients live in the frozen :class:`CvrWorld` dataclass
(:mod:`pfd_tf.datasets.cvr_world`).

The public entry point is :func:`generate_cvr`, which simulates a world
(:func:`simulate_cvr`, numpy only, vectorised) and writes it as day-split
CSV files plus a ``config.yaml`` (:func:`write_dataset`, through the shared
writer :mod:`pfd_tf.datasets.writer`). The TFDS builders in
:mod:`pfd_tf.datasets.tfds_builders` reuse :func:`simulate_cvr` directly.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pfd_tf.datasets.cvr_world import (
    CVR_FEATURES,
    DEVICES,
    HOUR_WEIGHTS,
    LABEL,
    RECENT_MAX_LEN,
    CvrWorld,
    cvr_hash_buckets,
)
from pfd_tf.datasets.sampling import draw_catalogue, sample_grouped, sigmoid, solve_base, taste_category_cdf, vocab, zipf_weights
from pfd_tf.datasets.mtl_baseline_config import write_mtl_baseline_config
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, Column, as_strings, feature_config, write_days


def _recent_categories(rng, world, user, user_cat_cdf) -> np.ndarray:
    """Per click, up to 10 distinct recently clicked categories joined by '|'."""
    n, n_cat = len(user), world.n_categories
    lengths = rng.integers(0, RECENT_MAX_LEN + 1, n)
    row = np.repeat(np.arange(n), lengths)
    taste_cat = sample_grouped(user_cat_cdf, user[row], rng.random(len(row))) % n_cat
    explore = rng.random(len(row)) < world.explore_prob
    cat = np.where(explore, rng.integers(0, n_cat, len(row)), taste_cat)
    _, first = np.unique(row * n_cat + cat, return_index=True)  # drop repeats
    keep = np.zeros(len(row), dtype=bool)
    keep[first] = True
    row, cat = row[keep], cat[keep]
    tokens = np.asarray(vocab(n_cat))[cat].tolist()
    ends = np.cumsum(np.bincount(row, minlength=n)).tolist()
    starts = [0] + ends[:-1]
    return np.asarray(["|".join(tokens[s:e]) for s, e in zip(starts, ends)])


def simulate_cvr(world: CvrWorld, seed: int, latents: bool = False) -> dict[str, np.ndarray]:
    """Simulates one click log; returns ``{column: array}`` in CVR_COLUMNS order.

    With ``latents=True`` it also returns the purchase logits ``mu`` (what the
    regular features can explain, base included) and ``z = mu + eps``, handy
    to measure the best AUC a student (``mu``) or a teacher (``z``) can reach.

    Rows are sorted by (day, hour). String columns are numpy unicode arrays,
    floats are already rounded as written to CSV, so every consumer (CSV
    writer, TFDS builder) sees the very same values.
    """
    world.validate()
    w, rng = world, np.random.default_rng(seed)
    n, dim, n_cat = w.rows, w.taste_dim, w.n_categories

    # Categories and items.
    cat_vec, cat_log_price, item_cat, item_shop, item_vec = draw_catalogue(rng, w)
    quality = rng.normal(size=w.n_items)
    log_price = cat_log_price[item_cat] + w.price_item_std * rng.normal(size=w.n_items)
    item_price = np.maximum(np.round(np.exp(log_price), 2), 0.5)
    item_rating = np.clip(np.round(
        3.6 + w.rating_slope * quality + w.rating_noise * rng.normal(size=w.n_items), 1), 1, 5)
    shop_bias = w.shop_bias_std * rng.normal(size=w.n_shops)
    item_bias = w.item_bias_std * rng.normal(size=w.n_items) + shop_bias[item_shop]
    item_pop = zipf_weights(rng, w.n_items, w.item_popularity_zipf)

    # Users.
    taste = rng.normal(size=(w.n_users, dim)) / np.sqrt(dim)
    sens_z = rng.normal(size=w.n_users)
    sensitivity = np.exp(w.sensitivity_std * sens_z)
    power = np.clip(np.rint(2 - w.power_slope * sens_z + 0.6 * rng.normal(size=w.n_users)), 0, 4)
    age = rng.integers(0, 7, w.n_users)
    gender = rng.integers(0, 2, w.n_users)
    pref_device = rng.choice(3, w.n_users, p=np.asarray(w.device_probs) / sum(w.device_probs))
    user_bias = w.user_bias_std * rng.normal(size=w.n_users)
    activity = zipf_weights(rng, w.n_users, w.user_activity_zipf)
    user_cat_cdf = taste_category_cdf(taste, cat_vec, w.taste_sharpness)

    # Clicks: user by activity, category by taste (or exploration), item by popularity.
    user = rng.choice(w.n_users, n, p=activity)
    taste_cat = sample_grouped(user_cat_cdf, user, rng.random(n)) % n_cat
    cat = np.where(rng.random(n) < w.explore_prob, rng.integers(0, n_cat, n), taste_cat)
    by_cat = np.argsort(item_cat, kind="stable")
    pop = item_pop[by_cat]
    cat_sorted = item_cat[by_cat]
    cat_total = np.bincount(cat_sorted, weights=pop, minlength=n_cat)
    item_cdf = np.cumsum(pop) - np.repeat(np.cumsum(cat_total) - cat_total, np.bincount(
        cat_sorted, minlength=n_cat))
    item_cdf = np.minimum(item_cdf / cat_total[cat_sorted], 1.0) + cat_sorted
    item = by_cat[sample_grouped(item_cdf, cat, rng.random(n))]
    day = rng.integers(0, w.days, n)
    hour = rng.choice(24, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    device = np.where(rng.random(n) < w.device_loyalty, pref_device[user], rng.integers(0, 3, n))
    recent = _recent_categories(rng, w, user, user_cat_cdf)

    # Purchase: mu(X) from regular-feature causes, eps only seen post-click.
    price = item_price[item]
    log_p = np.log(price) - w.price_log_mean
    affinity = np.einsum("nd,nd->n", taste[user], item_vec[item])
    mu = (w.taste_coef * affinity + w.quality_coef * quality[item]
          - w.price_coef * sensitivity[user] * log_p + user_bias[user]
          + item_bias[item] + np.asarray(w.device_effect)[device])
    eps = w.sigma_eps * rng.normal(size=n)
    base = solve_base(mu + eps, w.purchase_rate)
    z = mu + eps + base
    purchase = rng.random(n) < sigmoid(z)
    intent = (z - z.mean()) / z.std()  # purchase intent in units of its std

    # Privileged post-click behaviour: intent-driven, partly price-driven.
    dwell = np.maximum(1.0, np.round(np.exp(  # seconds, at least one
        w.dwell_log_mean + w.dwell_intent_coef * intent + w.dwell_price_coef * log_p
        + w.dwell_noise * rng.normal(size=n)), 1))
    comments = rng.random(n) < sigmoid(
        w.comments_bias + w.comments_intent_coef * intent + w.comments_price_coef * log_p)
    chat = rng.random(n) < sigmoid(
        w.chat_bias + w.chat_intent_coef * intent + w.chat_price_coef * log_p)
    cart = rng.random(n) < sigmoid(w.cart_bias + w.cart_intent_coef * intent)
    images = rng.poisson(np.exp(
        w.images_log_mean + w.images_intent_coef * intent + w.images_price_coef * log_p))

    columns = {
        "user_id": user.astype(str),
        "user_age": age[user],
        "user_gender": gender[user],
        "user_power": power[user].astype(np.int64),
        "recent_categories": recent,
        "item_id": item.astype(str),
        "category_id": item_cat[item].astype(str),
        "shop_id": item_shop[item].astype(str),
        "price": price,
        "item_rating": item_rating[item],
        "device": np.asarray(DEVICES)[device],
        "hour": hour,
        "dwell_time": dwell,
        "viewed_comments": comments,
        "chatted_with_seller": chat,
        "added_to_cart": cart,
        "images_viewed": images,
        DAY: day,
        LABEL: purchase,
    }
    if latents:
        columns.update(mu=mu + base, z=z)
    order = np.lexsort((hour, day))
    return {k: (v if v.dtype.kind in "UOf" else v.astype(np.int64))[order]
            for k, v in columns.items()}


def write_dataset(columns: Mapping[str, np.ndarray], features: tuple[Column, ...],
                  buckets: Mapping[str, int], days: int, seed: int, out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last
    day) and ``config.yaml``; returns the config path. Rows must be sorted by day."""
    by_name = {c.name: c for c in features}
    names = [c.name for c in features] + [DAY, LABEL]
    text = [as_strings(by_name.get(k), columns[k]) for k in names]
    lines = [",".join(r) for r in zip(*text)]
    header = ",".join(names)
    day = columns[DAY]
    train = day < days - 1
    feats = [feature_config(c, buckets.get(c.name), columns[c.name][train], RECENT_MAX_LEN) for c in features]
    config = run_config(feats, int(train.sum()), seed)
    write_mtl_baseline_config(out_dir, config, columns, train)  # before config.yaml: written last, as ever
    return write_days(out_dir, header, lines, day, days, config)


def generate_cvr(out_dir: str, rows: int = 200_000, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the CVR world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`CvrWorld` fields."""
    world = CvrWorld.for_rows(rows, days, **world)
    columns = simulate_cvr(world, seed)
    return write_dataset(columns, CVR_FEATURES, cvr_hash_buckets(world), days, seed, out_dir)
