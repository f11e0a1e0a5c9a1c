"""The dial world's parameters: the frozen :class:`DialWorld`, its columns, and the settings the regimes
benchmark measures.

The generative story (how much the privileged feature knows: ``privileged_share``) is in
:mod:`pfd_tf.datasets.dial`; the config it writes in :mod:`pfd_tf.datasets.dial_config`.
"""
from __future__ import annotations

import dataclasses

from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.writer import DAY, Column

LABEL = "purchase"
PRIVILEGED = "engagement"
DEVICES = ("ios", "android", "pc")
DEFAULT_ROWS = 100_000
DIAL_SETTINGS = (0.0, 0.4, 0.75, 0.9, 0.97)
"""The values of ``privileged_share`` the regimes benchmark measures: nothing, then shares at which the
oracle teacher leaves ~77 %, ~50 %, ~31 % and ~17 % of the label noise (``oracle_quantities``, 400,000
rows, seed 0, rows_per_id 40: 0.771, 0.493, 0.312, 0.171)."""
ROWS_PER_ID_SETTINGS = (40.0, 5.0)
"""The id-space sizes the regimes benchmark measures: dense ids, then sparse ones (8x as many ids)."""


@dataclasses.dataclass(frozen=True)
class DialWorld:
    """Sizes and coefficients of the dial world (every std is in units of the label noise ``eta``)."""

    rows: int = DEFAULT_ROWS
    """Number of clicks (CSV rows), all days together."""
    days: int = 8
    """Days of logs; the last one is the held-out test day."""
    privileged_share: float = 0.75
    """The dial, rho in [0, 1]: share of the label noise eta's variance that the privileged feature
    ``engagement`` explains.  0: pure noise; 1: engagement = eta, the label leaks."""
    rows_per_id: float = 20.0
    """The id-space knob: mean rows per user and per item; n_users = n_items = rows / rows_per_id."""
    taste_dim: int = 8
    """Dimension of the user taste and item latent vectors."""
    affinity_std: float = 0.4
    """Std of the user-item affinity <taste[u], item_vec[i]> over all user-item pairs."""
    user_bias_std: float = 0.4
    """Std of the per-user bias."""
    item_bias_std: float = 0.4
    """Std of the per-item bias."""
    n_categories: int = 30
    """Number of item categories (each item has one, uniformly)."""
    category_std: float = 0.3
    """Std of the per-category effect."""
    n_segments: int = 8
    """Number of user segments (each user has one, uniformly)."""
    segment_std: float = 0.25
    """Std of the per-segment effect."""
    hour_std: float = 0.15
    """Std of the hour-of-day effect (hours uniform)."""
    device_std: float = 0.1
    """Std of the device effect (devices uniform)."""
    purchase_rate: float = 0.2
    """Target purchase rate; the base utility is solved to match it."""

    @property
    def n_ids(self) -> int:
        """Users, and items: ``rows / rows_per_id`` (at least 2)."""
        return max(2, int(round(self.rows / self.rows_per_id)))

    def validate(self) -> None:
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (train + test days), got {self.days}")
        if self.rows < 10 * self.days:
            raise ValueError(f"rows must be >= 10 * days, got {self.rows}")
        if not 0.0 <= self.privileged_share <= 1.0:
            raise ValueError(f"privileged_share must be in [0, 1], got {self.privileged_share}")
        if self.rows_per_id <= 0:
            raise ValueError(f"rows_per_id must be > 0, got {self.rows_per_id}")
        if min(self.taste_dim, self.n_categories, self.n_segments) < 1:
            raise ValueError("taste_dim, n_categories and n_segments must be >= 1")
        for name in ("affinity_std", "user_bias_std", "item_bias_std", "category_std", "segment_std",
                     "hour_std", "device_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.purchase_rate < 1:
            raise ValueError(f"purchase_rate must be in (0, 1), got {self.purchase_rate}")


DIAL_FEATURES: tuple[Column, ...] = (
    Column("user_id", "int", "categorical", "regular", "user", 16),
    Column("user_segment", "int", "categorical", "regular", "user", 4),
    Column("item_id", "int", "categorical", "regular", "item", 16),
    Column("category_id", "int", "categorical", "regular", "item", 8),
    Column("hour", "int", "categorical", "regular", "context", 4, vocab(24)),
    Column("device", "str", "categorical", "regular", "context", 4, DEVICES),
    Column(PRIVILEGED, "float", "numeric", "privileged", "context", 8, decimals=3),
)
DIAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in DIAL_FEATURES) + (DAY, LABEL)
