"""The CTR world's parameters: the frozen :class:`CtrWorld`, its columns, and the buckets of its
behaviour ages and dwell times.

The generative story is in :mod:`pfd_tf.datasets.ctr`; the config it writes in
:mod:`pfd_tf.datasets.ctr_config`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pfd_tf.datasets.cvr_world import DEVICES
from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.writer import DAY, Column

LABEL = "click"
HIST_MAX_LEN = 50
"""Behaviours per impression in the ``hist_*`` sequences (k = 50, Section 5.1)."""
DEFAULT_ROWS = 600_000
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
    Column("user_age", "int", "categorical", "regular", "user", 4, vocab(7)),
    Column("user_gender", "int", "categorical", "regular", "user", 4, vocab(2)),
    Column("hist_item_id", "str", "sequence", "regular", "user", 16),
    Column("hist_category_id", "str", "sequence", "regular", "user", 8),
    Column("hist_shop_id", "str", "sequence", "regular", "user", 8),
    Column("hist_age_bucket", "str", "sequence", "regular", "user", 4, vocab(AGE_BUCKETS)),
    Column("hist_dwell_bucket", "str", "sequence", "regular", "user", 4, vocab(DWELL_BUCKETS)),
    Column("hist_type", "str", "sequence", "regular", "user", 4, BEHAVIOUR_TYPES),
    # item side
    Column("item_id", "str", "categorical", "regular", "item", 16),
    Column("category_id", "str", "categorical", "regular", "item", 8),
    Column("shop_id", "str", "categorical", "regular", "item", 8),
    Column("price", "float", "numeric", "regular", "item", 8, decimals=2),
    # context
    Column("hour", "int", "categorical", "regular", "context", 4, vocab(24)),
    Column("device", "str", "categorical", "regular", "context", 4, DEVICES),
    # privileged: user x item interacted, from behaviours strictly before the impression
    Column("u_cate_clicks_24h", "int", "numeric", "privileged", "user", 8),
    Column("u_shop_clicks_24h", "int", "numeric", "privileged", "user", 8),
    Column("u_cate_clicks_7d", "int", "numeric", "privileged", "user", 8),
    Column("u_shop_clicks_7d", "int", "numeric", "privileged", "user", 8),
    Column("u_item_clicked_before", "int", "categorical", "privileged", "user", 4, vocab(2)),
    Column("u_cate_purchases_30d", "int", "numeric", "privileged", "user", 4),
    Column("u_cate_last_age_bucket", "str", "categorical", "privileged", "user", 4,
           (NO_BEHAVIOUR,) + vocab(AGE_BUCKETS)),
)
CTR_COLUMNS: tuple[str, ...] = tuple(c.name for c in CTR_FEATURES) + (DAY, LABEL)


_AGE_STARTS = AGE_UNIT_SECONDS * (2 ** np.arange(AGE_BUCKETS, dtype=np.int64) - 1)


def age_bucket(seconds: np.ndarray) -> np.ndarray:
    """Log bucket of the time since a behaviour (see AGE_BUCKETS), exact in integer seconds."""
    return np.maximum(np.searchsorted(_AGE_STARTS, seconds, side="right") - 1, 0)


def dwell_bucket(seconds: np.ndarray) -> np.ndarray:
    """Log bucket of a dwell time (see DWELL_BUCKETS)."""
    return np.clip(np.floor(np.log2(np.maximum(seconds, 1.0))) - 1, 0,
                   DWELL_BUCKETS - 1).astype(np.int64)
