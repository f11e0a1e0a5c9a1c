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

All sizes and coefficients live in the frozen :class:`CtrWorld` dataclass.
:func:`generate_ctr` simulates (:func:`simulate_ctr`, numpy only, vectorised)
and writes ``train/day-XX.csv``, ``test/day-XX.csv`` and ``config.yaml`` in
the layout and with the helpers of the CVR world (:mod:`pfd_tf.data.synthetic`),
where it is registered as the ``ctr`` scenario of ``pfd-data``.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from pfd_tf.data.synthetic import (
    DAY,
    DEVICES,
    HOUR_WEIGHTS,
    Column,
    _as_strings,
    _sample_grouped,
    _taste_category_cdf,
    _sigmoid,
    _solve_base,
    _vocab,
    write_days,
    _zipf_weights,
    cvr_hash_buckets,
    feature_config,
    quantile_boundaries,
    run_config,
)

LABEL = "click"
HIST_MAX_LEN = 50
"""Behaviours per impression in the ``hist_*`` sequences (k = 50, Section 5.1)."""
BEHAVIOURS_READ = 20
"""The last behaviours the written config's encoder reads (``max_len`` of the
``hist_*`` features).  The data hold k = 50 as in the paper, but on a 2-core
CPU self-attention over 50 behaviours is most of a training step
(``benchmarks/step_cost.py``: baseline step on a fixed batch of 1024, 122 ms
reading 50, 50 ms reading 20);
``--set features.hist_item_id.max_len=50`` (and the other ``hist_*``) reads all."""
EPOCHS = 1
"""Passes over the train days: one, as in the paper (Section 5.1); the world is
sized to be big enough for it (``DEFAULT_ROWS``), and a multi-epoch run on a
smaller one lets the DNN teachers memorise ids (measured on 200,000 rows, 4
epochs: PFD+MD teacher AUC 0.80 on the train days, 0.72 held out)."""
DEFAULT_ROWS = 600_000
LEARNING_RATE = 1.6
"""Adagrad's peak rate of the written config (which trains PFD), chosen by
``benchmarks/compare_methods.py --scenario ctr --modes baseline,pfd --rates 0.8,1.6,3.2,6.4``
on the validation split of the validation world (seed 100), towers without
normalization: student AUC, baseline / PFD, 0.8480 / 0.8479 at 0.8,
0.8504 / 0.8481 at 1.6, 0.8500 / 0.8386 at 3.2, 0.8273 / 0.8167 at 6.4.  One
epoch of ~510 steps must learn ~24,000 user and item embeddings from ~21
impressions each, so the rate matters; a rate too low for the baseline makes
any co-trained teacher look useful, because the teacher's loss also trains
the shared tables: extra learning rate, not distillation."""
TEACHER_NORMALIZATION = "batch"
"""The normalization of the DNN teachers' towers (``model.teacher_normalization``; the
students' and a two-tower teacher's towers have none).  At ``LEARNING_RATE`` an
unnormalized MLP teacher diverges: its logit grows with the scale of every layer,
where the two-tower student's l2-normalized towers are blind to that scale.  PFD+MD
on the validation world (seed 100), held-out student / teacher AUC, baseline
student 0.8532: teacher towers without normalization 0.7497 / 0.5740 (the teacher
diverged, and moved the tables it shares with the student), layer 0.8466 / 0.9047,
batch 0.8527 / 0.9150.  On worlds 0-2 it removes the loss on worlds 0 and 1; world 2 keeps
one of 0.019 that Share&Sync itself causes (docs/results.md, "Why PFD+MD hurt the
two-tower student")."""
HIST_SEQUENCES = ("hist_item_id", "hist_category_id", "hist_shop_id",
                  "hist_age_bucket", "hist_dwell_bucket", "hist_type")
BEHAVIOUR_TYPES = ("click", "purchase")
AGE_BUCKETS = 10
"""Time since a behaviour: bucket b covers [15 min * (2^b - 1), 15 min * (2^(b+1) - 1)),
the last one everything older (about 5.3 days and more)."""
AGE_UNIT_SECONDS = 15 * 60
DWELL_BUCKETS = 10
"""Dwell seconds: bucket b covers [2^(b+1), 2^(b+2)) s, the first one below 4 s."""
NO_BEHAVIOUR = "none"  # u_cate_last_age_bucket when the category was never visited
HOUR, DAY_SECONDS = 3600, 86_400
COUNT_FEATURES = ("u_cate_clicks_24h", "u_shop_clicks_24h", "u_cate_clicks_7d",
                  "u_shop_clicks_7d", "u_cate_purchases_30d")


@dataclasses.dataclass(frozen=True)
class CtrWorld:
    """Sizes and coefficients of the synthetic CTR world (tune here)."""

    rows: int = 200_000
    """Number of impressions (CSV rows), all days together."""
    days: int = 8
    """Days of impression logs; the last one is the held-out test day."""
    n_users: int = 8_000
    """Number of users (ids 0..n_users-1)."""
    n_items: int = 8_000
    """Number of items."""
    n_categories: int = 100
    """Number of item categories."""
    n_shops: int = 800
    """Number of shops selling the items."""
    taste_dim: int = 8
    """Dimension of user taste and item latent vectors."""

    # --- items and users ---------------------------------------------------
    item_vec_noise: float = 0.6
    """Std of an item's latent vector around its category vector."""
    price_log_mean: float = 4.0
    """Mean log price over categories (p0 = exp(price_log_mean) ~ 55)."""
    price_category_std: float = 1.2
    """Std of the categories' mean log price."""
    price_item_std: float = 0.5
    """Std of an item's log price around its category mean."""
    user_activity_zipf: float = 0.5
    """Zipf exponent of users' activity (behaviour sessions and impressions)."""
    item_popularity_zipf: float = 0.9
    """Zipf exponent of items' popularity within their category or shop."""
    taste_sharpness: float = 2.0
    """How strongly users visit categories close to their taste."""
    device_loyalty: float = 0.85
    """Probability that an impression is on the user's preferred device."""
    device_probs: tuple[float, float, float] = (0.35, 0.45, 0.2)
    """Shares of users preferring ios, android and pc."""

    # --- behaviour stream ----------------------------------------------------
    history_days: int = 30
    """Days of behaviour simulated before the first logged day (warm-up), so
    30-day counts and full 50-behaviour sequences exist from day 0 on."""
    behaviours_per_user: float = 60.0
    """Mean number of behaviours per user over history_days + days."""
    session_length: float = 4.0
    """Mean behaviours per session (1 + Poisson)."""
    session_gap_minutes: float = 3.0
    """Mean minutes between two behaviours of a session (exponential)."""
    same_shop_prob: float = 0.4
    """Probability that a later behaviour of a session stays in the shop of its first item."""
    explore_prob: float = 0.2
    """Share of sessions (and recalled candidates) on a uniformly random category."""
    purchase_rate: float = 0.05
    """Share of behaviours that are purchases (the rest are clicks)."""
    purchase_affinity_coef: float = 1.0
    """Purchase logit per unit of user-item affinity."""
    dwell_log_mean: float = 3.3
    """Log dwell seconds of a click (exp(3.3) ~ 27 s)."""
    dwell_log_std: float = 0.9
    """Std of log dwell seconds."""
    dwell_purchase_coef: float = 0.8
    """Extra log dwell seconds when the behaviour is a purchase."""

    # --- impressions (candidate generation) ---------------------------------
    active_prob: float = 0.8
    """Share of impressions shown near one of the user's sessions (the rest at
    a random time, user drawn by activity)."""
    active_before_hours: float = 1.0
    """An active impression falls up to this long before its session's start..."""
    active_after_hours: float = 3.0
    """...or up to this long after it."""
    recall_recent_prob: float = 0.35
    """Share of candidates recalled from one of the user's last behaviours."""
    recall_recent_window: int = 10
    """How many of the last behaviours recall draws from."""
    recall_shop_prob: float = 0.4
    """Of recalled candidates, the share drawn from the behaviour's shop (else its category)."""

    # --- click logit -----------------------------------------------------------
    affinity_coef: float = 0.4
    """a: weight of the user-item affinity <u_taste, item_vec>."""
    popularity_coef: float = 0.6
    """b: weight of the item's log popularity (in units of its std over items).
    With user_bias_std, the additive part of the logit: see "Why additive effects" above."""
    price_coef: float = 0.15
    """c: weight of log(price / p0); expensive items get fewer clicks."""
    user_bias_std: float = 0.8
    """Std of the per-user click bias (light and heavy clickers)."""
    hour_effect: float = 0.2
    """Amplitude of the evening bump: logit + hour_effect * cos(2 pi (hour - 21) / 24)."""
    device_effect: tuple[float, float, float] = (0.1, 0.0, -0.2)
    """Logit shift on ios, android and pc."""
    cate_24h_coef: float = 0.4
    """Per log1p of the user's clicks in the item's category in the last 24 h."""
    shop_24h_coef: float = 0.35
    """Per log1p of the user's clicks in the item's shop in the last 24 h."""
    cate_7d_coef: float = 0.15
    """Per log1p of the user's clicks in the item's category in the last 7 days."""
    item_before_coef: float = 0.4
    """When the user clicked this very item before."""
    cate_purchase_coef: float = -0.5
    """When the user bought in the item's category in the last 30 days."""
    recency_coef: float = 0.5
    """Times exp(-hours since the last behaviour in the item's category / recency_hours)."""
    recency_hours: float = 6.0
    """Decay time of the recency bonus."""
    interacted_scale: float = 2.0
    """Multiplies the whole interacted part of the logit (the six coefficients
    above): how much the privileged features know beyond the regular ones.
    0 makes them worthless (a control: PFD must then match the baseline).  At 1
    (the first version of this world) PFD's teacher beat its student by ~0.02
    AUC and the student's gain was within seed noise (README, Table 2); at 2 the
    teacher is ~0.048 ahead and PFD gains +0.003 to +0.006 on every seed."""
    sigma_eps: float = 0.8
    """Std of the impression-level noise of the click logit."""
    click_rate: float = 0.05
    """Target click rate; the base logit is solved to match it."""

    @classmethod
    def for_rows(cls, rows: int, days: int = 8, **overrides) -> "CtrWorld":
        """A world whose user/item/shop counts are sized for ``rows`` impressions."""
        n_users = max(300, rows // 25)
        n_items = max(500, rows // 25)
        sizes = dict(rows=rows, days=days, n_users=n_users, n_items=n_items,
                     n_shops=max(10, n_items // 10))
        sizes.update(overrides)
        return cls(**sizes)

    def validate(self) -> None:
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (train + test days), got {self.days}")
        if self.rows < 10 * self.days:
            raise ValueError(f"rows must be >= 10 * days, got {self.rows}")
        if self.n_items < self.n_categories:
            raise ValueError("n_items must be >= n_categories")
        if self.history_days < 0:
            raise ValueError(f"history_days must be >= 0, got {self.history_days}")
        if self.interacted_scale < 0:
            raise ValueError(f"interacted_scale must be >= 0, got {self.interacted_scale}")


CTR_FEATURES: tuple[Column, ...] = (
    # user side: profile and behaviour sequence (most recent first, parallel lists)
    Column("user_id", "str", "categorical", "regular", "user", 16),
    Column("user_age", "int", "categorical", "regular", "user", 4, _vocab(7)),
    Column("user_gender", "int", "categorical", "regular", "user", 4, _vocab(2)),
    Column("hist_item_id", "str", "sequence", "regular", "user", 16),
    Column("hist_category_id", "str", "sequence", "regular", "user", 8),
    Column("hist_shop_id", "str", "sequence", "regular", "user", 8),
    Column("hist_age_bucket", "str", "sequence", "regular", "user", 4, _vocab(AGE_BUCKETS)),
    Column("hist_dwell_bucket", "str", "sequence", "regular", "user", 4, _vocab(DWELL_BUCKETS)),
    Column("hist_type", "str", "sequence", "regular", "user", 4, BEHAVIOUR_TYPES),
    # item side
    Column("item_id", "str", "categorical", "regular", "item", 16),
    Column("category_id", "str", "categorical", "regular", "item", 8),
    Column("shop_id", "str", "categorical", "regular", "item", 8),
    Column("price", "float", "numeric", "regular", "item", 8, decimals=2),
    # context
    Column("hour", "int", "categorical", "regular", "context", 4, _vocab(24)),
    Column("device", "str", "categorical", "regular", "context", 4, DEVICES),
    # privileged: user x item interacted, from behaviours strictly before the impression
    Column("u_cate_clicks_24h", "int", "numeric", "privileged", "user", 8),
    Column("u_shop_clicks_24h", "int", "numeric", "privileged", "user", 8),
    Column("u_cate_clicks_7d", "int", "numeric", "privileged", "user", 8),
    Column("u_shop_clicks_7d", "int", "numeric", "privileged", "user", 8),
    Column("u_item_clicked_before", "int", "categorical", "privileged", "user", 4, _vocab(2)),
    Column("u_cate_purchases_30d", "int", "numeric", "privileged", "user", 4),
    Column("u_cate_last_age_bucket", "str", "categorical", "privileged", "user", 4,
           (NO_BEHAVIOUR,) + _vocab(AGE_BUCKETS)),
)
CTR_COLUMNS: tuple[str, ...] = tuple(c.name for c in CTR_FEATURES) + (DAY, LABEL)


# --------------------------------------------------------------------------
# Simulation helpers
# --------------------------------------------------------------------------
def _grouped_cdf(group: np.ndarray, weight: np.ndarray, n_groups: int):
    """(members, cdf) to draw a member of group g by weight: ``members[_sample_grouped(cdf, g, u)]``.

    Every group drawn from must have at least one member.
    """
    members = np.argsort(group, kind="stable")
    g, w = group[members], weight[members]
    total = np.bincount(g, weights=w, minlength=n_groups)
    before = np.repeat(np.cumsum(total) - total, np.bincount(g, minlength=n_groups))
    cdf = np.minimum((np.cumsum(w) - before) / total[g], 1.0) + g
    return members, cdf


def _draw(members_cdf, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    members, cdf = members_cdf
    return members[_sample_grouped(cdf, group, u)]


_AGE_STARTS = AGE_UNIT_SECONDS * (2 ** np.arange(AGE_BUCKETS, dtype=np.int64) - 1)


def age_bucket(seconds: np.ndarray) -> np.ndarray:
    """Log bucket of the time since a behaviour (see AGE_BUCKETS), exact in integer seconds."""
    return np.maximum(np.searchsorted(_AGE_STARTS, seconds, side="right") - 1, 0)


def dwell_bucket(seconds: np.ndarray) -> np.ndarray:
    """Log bucket of a dwell time (see DWELL_BUCKETS)."""
    return np.clip(np.floor(np.log2(np.maximum(seconds, 1.0))) - 1, 0,
                   DWELL_BUCKETS - 1).astype(np.int64)


class TokenWindows:
    """``"|".join(tokens[s:s + n])`` for many windows (s, n) of one token list.

    The tokens are joined once into one long string; each window is then one
    slice of it, so a million 50-token windows take well under a second.
    """

    def __init__(self, tokens: list[str]):
        self.text = "|".join(tokens) + "|"
        ends = np.cumsum(np.fromiter(map(len, tokens), np.int64, len(tokens)) + 1)
        self.offsets = np.concatenate([[0], ends])

    def __call__(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """An object array of the joined windows ("" where a length is 0)."""
        lo = self.offsets[starts]
        hi = np.maximum(lo, self.offsets[starts + lengths] - 1)  # drop the last "|"
        out = np.empty(len(lo), dtype=object)
        out[:] = [self.text[a:b] for a, b in zip(lo.tolist(), hi.tolist())]
        return out


def joined_digits(digits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows of single-digit ids ``[n, k]`` -> ``"d0|d1|..."`` of the first ``lengths`` ones."""
    n, k = digits.shape
    chars = np.zeros((n, 2 * k), np.uint8)
    chars[:, 0::2] = ord("0") + digits
    chars[:, 1::2] = ord("|")
    chars[np.arange(2 * k)[None, :] >= 2 * lengths[:, None] - 1] = 0  # numpy drops trailing NULs
    out = np.empty(n, dtype=object)
    out[:] = [b.decode("ascii") for b in chars.view(f"S{2 * k}").ravel().tolist()]
    return out


class WindowStats:
    """Counts (and sums ``values`` of) events per group, e.g. user x category,
    in time windows that end strictly before query times.

    ``time`` must be >= 0 and < ``span``; groups are non-negative integers.
    """

    def __init__(self, group: np.ndarray, time: np.ndarray, span: int,
                 values: Mapping[str, np.ndarray] | None = None):
        self.span = int(span)
        key = np.asarray(group, np.int64) * self.span + time
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.cums = {name: np.concatenate([[0], np.cumsum(np.asarray(v)[order])])
                     for name, v in (values or {}).items()}

    def bounds(self, group: np.ndarray, time: np.ndarray, window: int | None = None):
        """Index range [lo, hi) of the group's events at times in [time - window, time)
        (all times before ``time`` when window is None)."""
        base = np.asarray(group, np.int64) * self.span
        hi = np.searchsorted(self.keys, base + time, side="left")
        start = 0 if window is None else np.maximum(time - window, 0)
        return np.searchsorted(self.keys, base + start, side="left"), hi

    def count(self, group: np.ndarray, time: np.ndarray, window: int | None = None) -> np.ndarray:
        lo, hi = self.bounds(group, time, window)
        return hi - lo

    def sum(self, name: str, group: np.ndarray, time: np.ndarray,
            window: int | None = None) -> np.ndarray:
        lo, hi = self.bounds(group, time, window)
        return self.cums[name][hi] - self.cums[name][lo]

    def last_time(self, group: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Time of the group's last event strictly before ``time``, or -1."""
        hi = np.searchsorted(self.keys, np.asarray(group, np.int64) * self.span + time, side="left")
        prev = self.keys[np.maximum(hi - 1, 0)]
        found = (hi > 0) & (prev // self.span == group)
        return np.where(found, prev % self.span, -1)


# --------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------
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
    cat_vec = rng.normal(size=(n_cat, dim))
    cat_log_price = rng.normal(w.price_log_mean, w.price_category_std, n_cat)
    item_cat = rng.integers(0, n_cat, w.n_items)
    item_cat[:n_cat] = np.arange(n_cat)  # every category sells something
    item_shop = rng.integers(0, w.n_shops, w.n_items)
    item_vec = cat_vec[item_cat] + w.item_vec_noise * rng.normal(size=(w.n_items, dim))
    log_price = cat_log_price[item_cat] + w.price_item_std * rng.normal(size=w.n_items)
    item_price = np.maximum(np.round(np.exp(log_price), 2), 0.5)
    item_pop = _zipf_weights(rng, w.n_items, w.item_popularity_zipf)
    log_pop = np.log(item_pop)
    pop_z = (log_pop - log_pop.mean()) / log_pop.std()
    by_cat = _grouped_cdf(item_cat, item_pop, n_cat)
    by_shop = _grouped_cdf(item_shop, item_pop, w.n_shops)

    # Users.
    taste = rng.normal(size=(w.n_users, dim)) / np.sqrt(dim)
    age = rng.integers(0, 7, w.n_users)
    gender = rng.integers(0, 2, w.n_users)
    pref_device = rng.choice(3, w.n_users, p=np.asarray(w.device_probs) / sum(w.device_probs))
    user_bias = w.user_bias_std * rng.normal(size=w.n_users)
    activity = _zipf_weights(rng, w.n_users, w.user_activity_zipf)
    user_cat_cdf = _taste_category_cdf(taste, cat_vec, w.taste_sharpness)

    def taste_or_explore(users: np.ndarray) -> np.ndarray:
        k = len(users)
        tasted = _sample_grouped(user_cat_cdf, users, rng.random(k)) % n_cat
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
    e_item = _draw(by_cat, s_cat[e_sess], rng.random(n_events))
    first_shop = item_shop[e_item[s_first]][e_sess]
    same_shop = (rng.random(n_events) < w.same_shop_prob) & (np.arange(n_events) != s_first[e_sess])
    e_item = np.where(same_shop, _draw(by_shop, first_shop, rng.random(n_events)), e_item)
    e_cat, e_shop = item_cat[e_item], item_shop[e_item]
    e_affinity = np.einsum("nd,nd->n", taste[e_user], item_vec[e_item])
    p_logit = w.purchase_affinity_coef * e_affinity
    e_purchase = rng.random(n_events) < _sigmoid(p_logit + _solve_base(p_logit, w.purchase_rate))
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
    item = _draw(by_cat, cat, rng.random(n))
    shop_item = _draw(by_shop, np.where(recall, e_shop[recent], 0), rng.random(n))
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
    base = _solve_base(logit + eps, w.click_rate)
    click = rng.random(n) < _sigmoid(logit + eps + base)

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


# --------------------------------------------------------------------------
# Writing: CSV files per day + config.yaml
# --------------------------------------------------------------------------
def count_boundaries(values: np.ndarray, n: int = 10) -> list[float]:
    """Boundaries for a count feature: zero alone, then ~n quantiles of the
    positive counts, placed half-way between integers."""
    positive = values[values > 0]
    qs = quantile_boundaries(positive, n) if len(positive) else []
    return sorted({0.5} | {float(np.floor(q)) + 0.5 for q in qs if q >= 1})


def ctr_hash_buckets(world: CtrWorld) -> dict[str, int]:
    """Hash bucket counts (~2x the id space) of the CTR id-like columns."""
    buckets = cvr_hash_buckets(world)  # user_id, item_id, category_id, shop_id
    buckets.pop("recent_categories", None)
    buckets.update(hist_item_id=buckets["item_id"], hist_category_id=buckets["category_id"],
                   hist_shop_id=buckets["shop_id"])
    return buckets


MODEL = {
    # The coarse-grained ranker of Section 5.2: a two-tower inner-product student whose
    # user side encodes the behaviour sequence by self-attention (Section 5.1).
    "architecture": "two_tower",
    "user_tower": [512, 256, 128],
    "item_tower": [512, 256, 128],
    "inner_product_scale": 5.0,
    "behaviour_items": ["hist_item_id", "hist_category_id", "hist_shop_id"],
    "behaviour_side": ["hist_age_bucket", "hist_dwell_bucket", "hist_type"],
    # The paper's 4 heads, at 8 dims each instead of 32: on a 2-core CPU, 4 x 32 heads over
    # 50 behaviours cost ~540 ms per step of 1024, 4 x 8 ~175 ms (measured with a fixed batch).
    "attention_heads": 4,
    "attention_head_dim": 8,
    "sharing": "shared",
    # Share*&Sync (Table 7): the student gets its own user id embedding.
    "student_private_features": ["user_id"],
    "student_tower": [512, 256, 128],
    "teacher_tower": [512, 256, 128],
    # The paper's CTR teacher for LUPI, MD and PFD+MD is a 3-layer MLP (Section 5.2).
    "big_teacher_tower": [512, 256, 128],
    # ...with batch normalization (the paper's Dense -> BN -> LeakyReLU, Section 5.1), where the two-tower
    # student's towers have none: see TEACHER_NORMALIZATION.
    "teacher_normalization": TEACHER_NORMALIZATION,
    # ...and here it also crosses the candidate with the behaviour sequence (target attention),
    # as DNN rankers do and a two-tower model cannot; [] gives the paper's plain MLP.
    "teacher_target_features": ["item_id", "category_id", "shop_id"],
}


def ctr_config(columns: Mapping[str, np.ndarray], world: CtrWorld, seed: int) -> dict:
    """The config.yaml of a simulated log: the CVR world's sections with CTR's label,
    sequence length, count boundaries and two-tower model section."""
    train = columns[DAY] < world.days - 1
    buckets = ctr_hash_buckets(world)
    features = []
    for col in CTR_FEATURES:
        values = columns[col.name][train]
        entry = feature_config(col, buckets.get(col.name), values)
        if col.name in COUNT_FEATURES:
            entry["boundaries"] = count_boundaries(values)
        if col.kind == "sequence":
            entry["max_len"] = BEHAVIOURS_READ
        features.append(entry)
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["data"]["label"] = LABEL
    config["model"] = dict(MODEL)
    return config


def write_ctr_dataset(columns: Mapping[str, np.ndarray], world: CtrWorld, seed: int,
                      out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last day)
    and ``config.yaml``; returns the config path. Rows must be sorted by day."""
    by_name = {c.name: c for c in CTR_FEATURES}
    names = list(CTR_COLUMNS)
    text = [columns[k].tolist() if columns[k].dtype == object
            else _as_strings(by_name.get(k), columns[k]) for k in names]
    lines = [",".join(r) for r in zip(*text)]
    header = ",".join(names)
    return write_days(out_dir, header, lines, columns[DAY], world.days, ctr_config(columns, world, seed))


def generate_ctr(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the CTR world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`CtrWorld` fields (e.g. ``interacted_scale=2.0``)."""
    world = CtrWorld.for_rows(rows, days, **world)
    return write_ctr_dataset(simulate_ctr(world, seed), world, seed, out_dir)


