"""A synthetic impression log for CTR at coarse-grained ranking (PFD paper, Section 3).

Why this exists. At Taobao's coarse-grained ranking (Figure 2 of Xu et al.,
KDD 2020) the CTR model is an inner-product, two-tower model (Eq. 3): a user
tower reads the user features and the behaviour sequence, an item tower the
item features, and only their inner product mixes the two, so that item
vectors can be computed off-line. *Interacted* features, which depend on the
user AND the candidate item (e.g. "clicks of the user in the item's category
during the last 24 hours"), would need one user-tower pass per candidate:
they are prohibited at serving time, i.e. privileged. They are informative,
and a teacher that sees them (placed on its user side, Section 5.2) beats
the two-tower student, which is what PFD distils.

The world reproduces that. One row per impression (label ``click``):

* A behaviour stream per user (all-app clicks, some of which are purchases)
  is simulated first, over ``history_days`` of warm-up plus the logged days:
  sessions start at a time drawn by hour of day, focus on a category drawn
  from the user's taste (or explored at random) and hold a few behaviours a
  few minutes apart, some of them in the shop of the session's first item.
  Impressions do not feed back into the stream (the stream stands for all
  of the user's behaviour across the app; clicks on this scenario's
  impressions are a small part of it).
* Impressions come mostly while the user is active (near one of her
  sessions, before or after its start), and candidates are recalled from
  the category or shop of one of the user's last behaviours, from her taste
  or at random (the candidate generation of Figure 2).
* For an impression at time ``t`` the *regular* user side holds the last
  ``HIST_MAX_LEN`` = 50 behaviours strictly before ``t``, most recent first,
  as parallel sequences (item, category, shop, plus the per-behaviour side
  features of Section 5.1: time since the behaviour, dwell time and type).
  The *privileged* interacted features are counts over the same stream,
  strictly before ``t``, restricted to the candidate's category, shop or
  item (the examples of Section 3).
* Click logit::

      z = a <u_taste, item_vec> + b popularity - c log(price / p0) + user bias
          + hour and device effects
          + s * interacted(t), s = interacted_scale (2 by default):
            clicks in the item's category / shop in the last
            24 h and 7 days (log1p counts), a decaying bonus for the time
            since the last behaviour in the category, a bonus when the item
            itself was clicked before, and a penalty after a purchase in
            the category in the last 30 days (the need is satisfied)
          + eps,  eps ~ N(0, sigma_eps);   click ~ Bernoulli(sigmoid(z + base))

  ``base`` is solved so the click rate equals ``CtrWorld.click_rate``. The
  interacted part needs the candidate's category/shop/item crossed with
  time-windowed history, which neither tower can see alone; the user tower
  can only approximate it from the sequence.

Why additive effects are strong. Users differ a lot in how often they click
and items in how attractive they are (``user_bias_std``, ``popularity_coef``).
The inner-product model has no bias terms: its logit is 5 x the cosine of two
unit vectors, so it can only approximate ``user bias + item popularity``
through the product, while a DNN adds them exactly. That is the structure that
makes PFD+MD's DNN teacher more accurate than PFD's inner-product teacher, as
on the paper's traffic (Table 2); with weak additive effects (0.3 and 0.3,
the first version of this world, trained at rate 0.05) the DNN teacher was the
*less* accurate one and PFD+MD's student did not beat PFD's.

All sizes and coefficients live in the frozen :class:`CtrWorld` dataclass
(:mod:`pfd_tf.datasets.ctr_world`).  :func:`generate_ctr` simulates
(:func:`simulate_ctr`, numpy only, vectorised) and writes ``train/day-XX.csv``,
``test/day-XX.csv`` and ``config.yaml`` (:mod:`pfd_tf.datasets.ctr_config`)
through the shared writer (:mod:`pfd_tf.datasets.writer`); it is the ``ctr``
scenario of ``pfd-data``.
"""
from __future__ import annotations

import numpy as np

from pfd_tf.datasets.behaviour_windows import TokenWindows, WindowStats, joined_digits
from pfd_tf.datasets.ctr_config import write_ctr_dataset
from pfd_tf.datasets.ctr_world import (
    BEHAVIOUR_TYPES,
    DAY_SECONDS,
    DEFAULT_ROWS,
    HIST_MAX_LEN,
    HOUR,
    LABEL,
    NO_BEHAVIOUR,
    CtrWorld,
    age_bucket,
    dwell_bucket,
)
from pfd_tf.datasets.cvr_world import DEVICES, HOUR_WEIGHTS
from pfd_tf.datasets.sampling import draw_catalogue, draw_grouped, grouped_cdf, sample_grouped, sigmoid, solve_base, \
    taste_category_cdf, zipf_weights
from pfd_tf.datasets.writer import DAY


def simulate_ctr(world: CtrWorld, seed: int, latents: bool = False) -> dict[str, np.ndarray]:
    """Simulates one impression log; returns ``{column: array}`` in CTR_COLUMNS order.

    Rows are sorted by impression time. The ``hist_*`` columns are object
    arrays of ``|``-joined strings (all of a row's have the same number of
    elements, most recent first), other string columns numpy unicode arrays;
    floats are rounded as written to CSV.

    With ``latents=True`` it also returns, per row: ``time`` (impression, in
    seconds since the start of day 0), ``hist_time`` (``|``-joined seconds of
    the hist behaviours), ``logit`` (the click logit without ``eps``, base
    included) and ``interacted`` (its interacted part); and the behaviour
    stream, one entry per behaviour sorted by (user, time): ``event_user``,
    ``event_time`` (negative during the warm-up), ``event_item``,
    ``event_category``, ``event_shop``, ``event_purchase``, ``event_dwell_bucket``.
    """
    world.validate()
    w, rng = world, np.random.default_rng(seed)
    n, dim, n_cat = w.rows, w.taste_dim, w.n_categories

    # Categories and items.
    cat_vec, cat_log_price, item_cat, item_shop, item_vec = draw_catalogue(rng, w)
    log_price = cat_log_price[item_cat] + w.price_item_std * rng.normal(size=w.n_items)
    item_price = np.maximum(np.round(np.exp(log_price), 2), 0.5)
    item_pop = zipf_weights(rng, w.n_items, w.item_popularity_zipf)
    log_pop = np.log(item_pop)
    pop_z = (log_pop - log_pop.mean()) / log_pop.std()
    by_cat = grouped_cdf(item_cat, item_pop, n_cat)
    by_shop = grouped_cdf(item_shop, item_pop, w.n_shops)

    # Users.
    taste = rng.normal(size=(w.n_users, dim)) / np.sqrt(dim)
    age = rng.integers(0, 7, w.n_users)
    gender = rng.integers(0, 2, w.n_users)
    pref_device = rng.choice(3, w.n_users, p=np.asarray(w.device_probs) / sum(w.device_probs))
    user_bias = w.user_bias_std * rng.normal(size=w.n_users)
    activity = zipf_weights(rng, w.n_users, w.user_activity_zipf)
    user_cat_cdf = taste_category_cdf(taste, cat_vec, w.taste_sharpness)

    def taste_or_explore(users: np.ndarray) -> np.ndarray:
        k = len(users)
        tasted = sample_grouped(user_cat_cdf, users, rng.random(k)) % n_cat
        return np.where(rng.random(k) < w.explore_prob, rng.integers(0, n_cat, k), tasted)

    # Behaviour stream: sessions of a few behaviours in one category.
    # Times are integer seconds since the start of day 0 (negative in the warm-up).
    n_sessions = max(1, round(w.behaviours_per_user * w.n_users / w.session_length))
    s_user = rng.choice(w.n_users, n_sessions, p=activity)
    s_day = rng.integers(-w.history_days, w.days, n_sessions)
    s_hour = rng.choice(24, n_sessions, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    s_start = s_day * DAY_SECONDS + s_hour * HOUR + rng.integers(0, HOUR, n_sessions)
    s_cat = taste_or_explore(s_user)
    s_len = 1 + rng.poisson(w.session_length - 1.0, n_sessions)
    s_first = np.cumsum(s_len) - s_len  # index of each session's first behaviour
    e_sess = np.repeat(np.arange(n_sessions), s_len)
    n_events = len(e_sess)
    gap = np.ceil(rng.exponential(60.0 * w.session_gap_minutes, n_events)).astype(np.int64)
    gap[s_first] = 0
    elapsed = np.cumsum(gap)
    e_time = s_start[e_sess] + elapsed - elapsed[s_first][e_sess]
    e_user = s_user[e_sess]
    e_item = draw_grouped(by_cat, s_cat[e_sess], rng.random(n_events))
    first_shop = item_shop[e_item[s_first]][e_sess]
    same_shop = (rng.random(n_events) < w.same_shop_prob) & (np.arange(n_events) != s_first[e_sess])
    e_item = np.where(same_shop, draw_grouped(by_shop, first_shop, rng.random(n_events)), e_item)
    e_cat, e_shop = item_cat[e_item], item_shop[e_item]
    e_affinity = np.einsum("nd,nd->n", taste[e_user], item_vec[e_item])
    p_logit = w.purchase_affinity_coef * e_affinity
    e_purchase = rng.random(n_events) < sigmoid(p_logit + solve_base(p_logit, w.purchase_rate))
    e_dwell = np.exp(w.dwell_log_mean + w.dwell_purchase_coef * e_purchase
                     + w.dwell_log_std * rng.normal(size=n_events))
    e_dwell_bucket = dwell_bucket(e_dwell)

    # Impressions: mostly while the user is active, else at a random time.
    end = w.days * DAY_SECONDS
    logged = np.flatnonzero((s_start >= 0) & (s_start < end))
    if len(logged) == 0:
        logged = np.arange(n_sessions)
    anchor = logged[rng.integers(0, len(logged), n)]
    offset = rng.integers(-round(w.active_before_hours * HOUR), round(w.active_after_hours * HOUR) + 1, n)
    free_day = rng.integers(0, w.days, n)
    free_hour = rng.choice(24, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    free_time = free_day * DAY_SECONDS + free_hour * HOUR + rng.integers(0, HOUR, n)
    active = rng.random(n) < w.active_prob
    user = np.where(active, s_user[anchor], rng.choice(w.n_users, n, p=activity))
    time = np.clip(np.where(active, s_start[anchor] + offset, free_time), 0, end - 1)
    order = np.lexsort((np.arange(n), time))  # rows sorted by impression time
    user, time = user[order], time[order]

    # History: behaviours sorted by user, most recent first; a row's window
    # starts at its user's first behaviour strictly before its time.
    shift = w.history_days * DAY_SECONDS
    span = int(max(e_time.max(), end) + shift + 1)
    desc_key = e_user * span + (span - 1 - (e_time + shift))
    stream = np.lexsort((-np.arange(n_events), desc_key))  # exactly reversed (time, index) order
    desc_key = desc_key[stream]
    first = np.searchsorted(desc_key, user * span + (span - 1 - (time + shift)), side="right")
    user_end = np.searchsorted(desc_key, (user + 1) * span, side="left")
    length = np.minimum(HIST_MAX_LEN, user_end - first)

    # Candidates: from a recent behaviour's shop or category, the user's taste, or at random.
    recent = first + np.floor(rng.random(n) * np.minimum(length, w.recall_recent_window)).astype(np.int64)
    recent = stream[np.minimum(recent, n_events - 1)]
    recall = (rng.random(n) < w.recall_recent_prob) & (length > 0)
    by_shop_recall = rng.random(n) < w.recall_shop_prob
    cat = np.where(recall, e_cat[recent], taste_or_explore(user))
    item = draw_grouped(by_cat, cat, rng.random(n))
    shop_item = draw_grouped(by_shop, np.where(recall, e_shop[recent], 0), rng.random(n))
    item = np.where(recall & by_shop_recall, shop_item, item)
    i_cat, i_shop = item_cat[item], item_shop[item]

    # Interacted features, all from behaviours strictly before the impression.
    t = time + shift
    et = e_time + shift
    by_user_cat = WindowStats(e_user * n_cat + e_cat, et, span)
    by_user_shop = WindowStats(e_user * w.n_shops + e_shop, et, span)
    by_user_item = WindowStats(e_user * w.n_items + e_item, et, span)
    bought = WindowStats((e_user * n_cat + e_cat)[e_purchase], et[e_purchase], span)
    g_cat, g_shop = user * n_cat + i_cat, user * w.n_shops + i_shop
    cate_24h = by_user_cat.count(g_cat, t, DAY_SECONDS)
    shop_24h = by_user_shop.count(g_shop, t, DAY_SECONDS)
    cate_7d = by_user_cat.count(g_cat, t, 7 * DAY_SECONDS)
    shop_7d = by_user_shop.count(g_shop, t, 7 * DAY_SECONDS)
    item_before = by_user_item.count(user * w.n_items + item, t, None) > 0
    cate_bought_30d = bought.count(g_cat, t, 30 * DAY_SECONDS)
    last = by_user_cat.last_time(g_cat, t)
    since_last = np.where(last >= 0, t - last, -1)
    last_bucket = np.where(last >= 0, age_bucket(since_last).astype(str), NO_BEHAVIOUR)

    # Click.
    hour = (time % DAY_SECONDS) // HOUR
    device = np.where(rng.random(n) < w.device_loyalty, pref_device[user], rng.integers(0, 3, n))
    affinity = np.einsum("nd,nd->n", taste[user], item_vec[item])
    recency = np.where(last >= 0, np.exp(-since_last / (w.recency_hours * HOUR)), 0.0)
    interacted = w.interacted_scale * (
        w.cate_24h_coef * np.log1p(cate_24h) + w.shop_24h_coef * np.log1p(shop_24h)
        + w.cate_7d_coef * np.log1p(cate_7d) + w.item_before_coef * item_before
        + w.cate_purchase_coef * (cate_bought_30d > 0) + w.recency_coef * recency)
    logit = (w.affinity_coef * affinity + w.popularity_coef * pop_z[item]
             - w.price_coef * (np.log(item_price[item]) - w.price_log_mean) + user_bias[user]
             + w.hour_effect * np.cos(2 * np.pi * (hour - 21) / 24)
             + np.asarray(w.device_effect)[device] + interacted)
    eps = w.sigma_eps * rng.normal(size=n)
    base = solve_base(logit + eps, w.click_rate)
    click = rng.random(n) < sigmoid(logit + eps + base)

    # Behaviour sequences as "|"-joined strings, most recent first.
    def seq(values: np.ndarray) -> np.ndarray:
        return TokenWindows(values[stream].astype(str).tolist())(first, length)

    window = np.minimum(first[:, None] + np.arange(HIST_MAX_LEN)[None, :], n_events - 1)
    ages = age_bucket(time[:, None] - e_time[stream][window])
    columns = {
        "user_id": user.astype(str),
        "user_age": age[user],
        "user_gender": gender[user],
        "hist_item_id": seq(e_item),
        "hist_category_id": seq(e_cat),
        "hist_shop_id": seq(e_shop),
        "hist_age_bucket": joined_digits(ages, length),
        "hist_dwell_bucket": seq(e_dwell_bucket),
        "hist_type": seq(np.asarray(BEHAVIOUR_TYPES)[e_purchase.astype(np.int64)]),
        "item_id": item.astype(str),
        "category_id": i_cat.astype(str),
        "shop_id": i_shop.astype(str),
        "price": item_price[item],
        "hour": hour,
        "device": np.asarray(DEVICES)[device],
        "u_cate_clicks_24h": cate_24h,
        "u_shop_clicks_24h": shop_24h,
        "u_cate_clicks_7d": cate_7d,
        "u_shop_clicks_7d": shop_7d,
        "u_item_clicked_before": item_before,
        "u_cate_purchases_30d": cate_bought_30d,
        "u_cate_last_age_bucket": last_bucket,
        DAY: time // DAY_SECONDS,
        LABEL: click,
    }
    columns = {k: (v if v.dtype.kind in "UOf" else v.astype(np.int64)) for k, v in columns.items()}
    if latents:
        events = np.lexsort((e_time, e_user))
        columns.update(
            time=time, hist_time=seq(e_time), logit=logit + base, interacted=interacted,
            event_user=e_user[events], event_time=e_time[events], event_item=e_item[events],
            event_category=e_cat[events], event_shop=e_shop[events],
            event_purchase=e_purchase[events], event_dwell_bucket=e_dwell_bucket[events])
    return columns


def generate_ctr(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the CTR world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`CtrWorld` fields (e.g. ``interacted_scale=2.0``)."""
    world = CtrWorld.for_rows(rows, days, **world)
    return write_ctr_dataset(simulate_ctr(world, seed), world, seed, out_dir)
