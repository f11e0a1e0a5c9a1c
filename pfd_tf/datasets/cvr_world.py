"""The CVR world's parameters: the frozen :class:`CvrWorld`, its columns and hash buckets.

The generative story these parameters feed is in :mod:`pfd_tf.datasets.cvr` (Section 3 of the PFD
paper: post-click privileged features).  ``DEVICES`` and ``HOUR_WEIGHTS`` are shared by the CTR and
multi-task worlds.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.writer import DAY, Column

LABEL = "purchase"
DEVICES = ("ios", "android", "pc")
# Share of clicks per hour of the day: quiet nights, lunch bump, evening peak.
HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 7, 6, 5, 5, 5, 6, 7, 9, 10, 10, 8, 4],
    dtype=np.float64,
)


@dataclasses.dataclass(frozen=True)
class CvrWorld:
    """Sizes and coefficients of the synthetic CVR world (tune here)."""

    rows: int = 200_000
    """Number of clicks (CSV rows), all days together."""
    days: int = 8
    """Days of logs; the last one is the held-out test day."""
    n_users: int = 10_000
    """Number of users (ids 0..n_users-1)."""
    n_items: int = 10_000
    """Number of items."""
    n_categories: int = 100
    """Number of item categories."""
    n_shops: int = 1_000
    """Number of shops selling the items."""
    taste_dim: int = 8
    """Dimension of user taste and item latent vectors."""

    # --- world structure -------------------------------------------------
    item_vec_noise: float = 0.6
    """Std of an item's latent vector around its category vector."""
    price_log_mean: float = 4.0
    """Mean log price over categories (p0 = exp(price_log_mean) ~ 55)."""
    price_category_std: float = 1.2
    """Std of the categories' mean log price (cheap vs luxury categories)."""
    price_item_std: float = 0.5
    """Std of an item's log price around its category mean."""
    rating_slope: float = 0.6
    """item_rating = 3.6 + rating_slope * quality + noise, clipped to [1, 5]."""
    rating_noise: float = 0.4
    """Std of the noise of item_rating around quality."""
    sensitivity_std: float = 0.4
    """Price sensitivity = exp(sensitivity_std * N(0, 1))."""
    power_slope: float = 1.2
    """Purchase power level drops by this much per std of sensitivity."""
    user_activity_zipf: float = 0.8
    """Zipf exponent of users' click activity."""
    item_popularity_zipf: float = 0.9
    """Zipf exponent of items' popularity within their category."""
    taste_sharpness: float = 2.0
    """How strongly users click categories close to their taste."""
    explore_prob: float = 0.2
    """Share of clicks (and recent categories) on a uniformly random category."""
    device_loyalty: float = 0.85
    """Probability that a click uses the user's preferred device."""
    device_probs: tuple[float, float, float] = (0.35, 0.45, 0.2)
    """Shares of users preferring ios, android and pc."""

    # --- purchase logit mu(X) + eps ---------------------------------------
    taste_coef: float = 1.0
    """a: weight of the user-item affinity <u_taste, item_vec>."""
    quality_coef: float = 0.5
    """b: weight of the item quality."""
    price_coef: float = 0.6
    """c: weight of sensitivity * log(price / p0); expensive items convert less."""
    user_bias_std: float = 0.5
    """Std of the per-user purchase bias."""
    item_bias_std: float = 0.3
    """Std of the per-item purchase bias."""
    shop_bias_std: float = 0.3
    """Std of the per-shop purchase bias (added to its items)."""
    device_effect: tuple[float, float, float] = (0.1, 0.0, 0.2)
    """Logit shift on ios, android and pc."""
    sigma_eps: float = 1.2
    """Std of the click-level intent eps that only the privileged features see."""
    purchase_rate: float = 0.07
    """Target purchase rate; the base logit is solved to match it."""

    # --- privileged post-click features -----------------------------------
    # Driven by the standardised intent (z - mean z) / std z and by log(price/p0).
    dwell_log_mean: float = 3.4
    """Log dwell seconds at average intent and price p0 (exp(3.4) ~ 30 s)."""
    dwell_intent_coef: float = 0.5
    """alpha: log dwell per std of purchase intent."""
    dwell_price_coef: float = 0.55
    """beta: log dwell per unit of log(price / p0), whatever the intent."""
    dwell_noise: float = 0.5
    """Std of log dwell noise."""
    comments_intent_coef: float = 0.8
    """Logit of viewed_comments per std of intent."""
    comments_price_coef: float = 0.3
    """Logit of viewed_comments per unit of log(price / p0)."""
    comments_bias: float = -0.5
    """Logit of viewed_comments at average intent and price p0."""
    chat_intent_coef: float = 0.8
    """Logit of chatted_with_seller per std of intent."""
    chat_price_coef: float = 0.9
    """Logit of chatted_with_seller per unit of log(price / p0)."""
    chat_bias: float = -2.5
    """Logit of chatted_with_seller at average intent and price p0."""
    cart_intent_coef: float = 2.0
    """Logit of added_to_cart per std of intent (strongly intent driven)."""
    cart_bias: float = -2.5
    """Logit of added_to_cart at average intent."""
    images_log_mean: float = 1.0
    """Log of the mean number of images viewed at average intent and price p0."""
    images_intent_coef: float = 0.3
    """Log images viewed per std of intent."""
    images_price_coef: float = 0.2
    """Log images viewed per unit of log(price / p0)."""

    @classmethod
    def for_rows(cls, rows: int, days: int = 8, **overrides) -> "CvrWorld":
        """A world whose user/item/shop counts are sized for ``rows`` clicks."""
        n_users = max(500, rows // 20)
        n_items = max(500, rows // 20)
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


CVR_FEATURES: tuple[Column, ...] = (
    Column("user_id", "str", "categorical", "regular", "user", 16),
    Column("user_age", "int", "categorical", "regular", "user", 4, vocab(7)),
    Column("user_gender", "int", "categorical", "regular", "user", 4, vocab(2)),
    Column("user_power", "int", "categorical", "regular", "user", 4, vocab(5)),
    Column("recent_categories", "str", "sequence", "regular", "user", 8),
    Column("item_id", "str", "categorical", "regular", "item", 16),
    Column("category_id", "str", "categorical", "regular", "item", 8),
    Column("shop_id", "str", "categorical", "regular", "item", 8),
    Column("price", "float", "numeric", "regular", "item", 8, decimals=2),
    Column("item_rating", "float", "numeric", "regular", "item", 8, decimals=1),
    Column("device", "str", "categorical", "regular", "context", 4, DEVICES),
    Column("hour", "int", "categorical", "regular", "context", 4, vocab(24)),
    Column("dwell_time", "float", "numeric", "privileged", "context", 8, decimals=1),
    Column("viewed_comments", "int", "categorical", "privileged", "context", 4, vocab(2)),
    Column("chatted_with_seller", "int", "categorical", "privileged", "context", 4, vocab(2)),
    Column("added_to_cart", "int", "categorical", "privileged", "context", 4, vocab(2)),
    Column("images_viewed", "int", "numeric", "privileged", "context", 8),
)
CVR_COLUMNS: tuple[str, ...] = tuple(c.name for c in CVR_FEATURES) + (DAY, LABEL)
RECENT_MAX_LEN = 10  # recent_categories: at most this many distinct categories per click


def cvr_hash_buckets(world: CvrWorld) -> dict[str, int]:
    """Hash bucket counts (~2x the id space) of the CVR id-like columns."""
    return {"user_id": 2 * world.n_users, "item_id": 2 * world.n_items,
            "category_id": 2 * world.n_categories, "shop_id": 2 * world.n_shops,
            "recent_categories": 2 * world.n_categories}
