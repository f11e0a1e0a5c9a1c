"""A synthetic two-task feed: each impression can be liked and can be bought, for multi-task distillation.

Why this exists. CrossDistil ("Cross-Task Knowledge Distillation in
Multi-Task Recommendation", AAAI 2022) transfers one task's fine-grained
ranking to another: among the items a user did not buy, the liked ones are
the more buyable (Section 1).  It also argues that naive cross-task
distillation hurts because the tasks' orders conflict (an expensive item
liked but not bought against a cheap one bought but not liked, Section 3.1).
The PFD paper's MTL baseline (Section 5.3) predicts post-event privileged
features as auxiliary tasks.  No public log has both labels, their
conflicts and post-event features with known latents, so this world
simulates them, with every claim below checked by
`tests/datasets/test_multitask_data.py`.

Generative story (one row per impression of item i to user u; labels
``like`` and ``buy``, neither implying the other)::

    s        = <taste_u, item_vec_i>                  shared preference (ids and category see it)
    e        ~ N(0, 1)                                 the impression's engagement, shared by both tasks
    mu_like  = s + quality_coef_like q_i + appeal_coef a_i + like_price_coef log(price / p0)
               + like_bias_u
    mu_buy   = s + quality_coef_buy q_i - buy_price_coef sensitivity_u log(price / p0)
               + buy_bias_u + device effect
    z_t      = mu_t + engagement_coef e + event_noise eps_t + base_t,    eps_t ~ N(0, 1)
    like ~ Bernoulli(sigmoid(z_like)),  buy ~ Bernoulli(sigmoid(z_buy))

* Correlated: both logits share s, the quality q and the engagement e, so
  a liked impression is several times more likely to be bought, and, within
  one label of a task, rows positive for the other task have the higher
  regular-feature logit (the fine-grained order CrossDistil's augmented tasks
  learn: x_{-+} above x_{--} for like, x_{+-} above x_{--} for buy).
* Conflicting: appeal a (only liked) and price (liked a little more when
  dear, bought much less by price-sensitive users) and the users' own like
  and buy biases pull the orders apart: a third or more of the purchases
  are not liked, and the like logit ranks purchases well below the buy
  logit, so a like model is a poor soft label for buy as it stands.
* Privileged (post-event, for the MTL baseline): the log dwell time grows
  with both standardised intents (z - mean z) / std z and with the price;
  ``viewed_comments`` mostly with the buy intent.  Both see the event-level
  e and eps, which no serving-time feature does.

``base_t`` is solved so that the rates equal ``like_rate`` and ``buy_rate``;
``user_age`` and ``hour`` carry nothing.  Rows are sorted by day; the last
day is the test day.  The parameters were set once from this story and kept
after the oracle check below; no model has been trained on this world.

Oracle AUCs on the test day (:func:`oracle_aucs`; 200,000 rows, seeds 0 / 1 / 2)::

    like: mu_like 0.849 / 0.827 / 0.855, z_like 0.895 / 0.882 / 0.901, mu_buy 0.712 / 0.699 / 0.712
    buy:  mu_buy  0.889 / 0.880 / 0.899, z_buy  0.921 / 0.918 / 0.932, mu_like 0.764 / 0.743 / 0.757
    Multi-AUC of mu_like (task A) 0.810 / 0.795 / 0.812, of mu_buy (task B) 0.822 / 0.815 / 0.830

    python -c "from pfd_tf.datasets.multitask import *; w = MultitaskWorld.for_rows(DEFAULT_ROWS); \\
               [print(s, oracle_aucs(simulate_multitask(w, s, latents=True))) for s in (0, 1, 2)]"

`generate_multitask` writes ``train/day-XX.csv`` and ``test/day-XX.csv`` with both label columns
and the privileged columns, through the shared writers of
:mod:`pfd_tf.datasets.writer`, and no ``config.yaml`` yet (its ``tasks:``
section does not exist); `multitask_features` gives its ``features:`` entries.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import numpy as np

from pfd_tf.datasets.cvr_world import DEVICES, HOUR_WEIGHTS
from pfd_tf.datasets.sampling import sigmoid, solve_base, vocab, zipf_weights
from pfd_tf.datasets.writer import DAY, Column, as_strings, feature_config, write_csv
from pfd_tf.metrics import exact_auc
from pfd_tf.metrics_multiclass import TASK_A, TASK_B, multi_auc

LIKE, BUY = "like", "buy"
LABELS = (LIKE, BUY)
DEFAULT_ROWS = 200_000


@dataclasses.dataclass(frozen=True)
class MultitaskWorld:
    """Sizes and coefficients of the two-task world (the story in the module docstring)."""

    rows: int = DEFAULT_ROWS
    days: int = 8
    n_users: int = 10_000
    n_items: int = 10_000
    n_categories: int = 50
    taste_dim: int = 8
    item_vec_noise: float = 0.6
    """Std of an item's latent vector around its category's."""
    price_log_mean: float = 4.0
    price_category_std: float = 1.0
    price_item_std: float = 0.4
    sensitivity_std: float = 0.4
    """Price sensitivity = exp(sensitivity_std N(0, 1)), per user."""
    user_activity_zipf: float = 0.8
    item_popularity_zipf: float = 0.9
    device_probs: tuple[float, float, float] = (0.35, 0.45, 0.2)
    taste_coef: float = 1.5
    """Weight of s = <taste, item_vec> in both logits."""
    quality_coef_like: float = 0.4
    quality_coef_buy: float = 0.5
    appeal_coef: float = 0.8
    """Weight of the item's appeal a in the like logit only."""
    like_price_coef: float = 0.3
    """Dear items are liked a little more (aspiration)..."""
    buy_price_coef: float = 0.9
    """...and bought less, by sensitivity * log(price / p0)."""
    like_bias_std: float = 0.6
    buy_bias_std: float = 0.6
    device_effect: tuple[float, float, float] = (0.1, 0.0, 0.2)
    """Buy logit shift on ios, android and pc."""
    engagement_coef: float = 0.8
    """Weight of the shared event-level engagement e in both logits."""
    event_noise: float = 0.8
    """Std of each task's own event-level noise eps_t."""
    like_rate: float = 0.2
    buy_rate: float = 0.05
    dwell_log_mean: float = 3.0
    """Log dwell seconds at average intents and price p0 (exp(3) ~ 20 s)."""
    dwell_like_coef: float = 0.3
    dwell_buy_coef: float = 0.4
    dwell_price_coef: float = 0.3
    dwell_noise: float = 0.5
    comments_bias: float = -1.0
    comments_buy_coef: float = 0.9
    comments_like_coef: float = 0.2

    @classmethod
    def for_rows(cls, rows: int, days: int = 8, **overrides) -> "MultitaskWorld":
        """A world whose user and item counts are sized for ``rows`` impressions."""
        sizes = dict(rows=rows, days=days, n_users=max(300, rows // 20), n_items=max(300, rows // 20))
        sizes.update(overrides)
        return cls(**sizes)

    def validate(self) -> None:
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (train + test days), got {self.days}")
        if self.rows < 10 * self.days:
            raise ValueError(f"rows must be >= 10 * days, got {self.rows}")
        if self.n_items < self.n_categories:
            raise ValueError("n_items must be >= n_categories")
        for name in ("like_rate", "buy_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")


MULTITASK_FEATURES: tuple[Column, ...] = (
    Column("user_id", "str", "categorical", "regular", "user", 16),
    Column("user_age", "int", "categorical", "regular", "user", 4, vocab(7)),
    Column("item_id", "str", "categorical", "regular", "item", 16),
    Column("category_id", "str", "categorical", "regular", "item", 8),
    Column("price", "float", "numeric", "regular", "item", 8, decimals=2),
    Column("device", "str", "categorical", "regular", "context", 4, DEVICES),
    Column("hour", "int", "categorical", "regular", "context", 4, vocab(24)),
    Column("dwell_time", "float", "numeric", "privileged", "context", 8, decimals=1),
    Column("viewed_comments", "int", "categorical", "privileged", "context", 4, vocab(2)),
)
MULTITASK_COLUMNS: tuple[str, ...] = tuple(c.name for c in MULTITASK_FEATURES) + (DAY, LIKE, BUY)


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def simulate_multitask(world: MultitaskWorld, seed: int, latents: bool = False) -> dict[str, np.ndarray]:
    """Simulates one impression log; returns ``{column: array}`` in MULTITASK_COLUMNS order, sorted by
    (day, hour).  With ``latents=True`` also ``mu_like``, ``mu_buy`` (what the regular features can
    explain, bases included) and ``z_like``, ``z_buy`` (the true logits)."""
    world.validate()
    w, rng = world, np.random.default_rng(seed)
    n, dim = w.rows, w.taste_dim

    cat_vec = rng.normal(size=(w.n_categories, dim))
    cat_log_price = rng.normal(w.price_log_mean, w.price_category_std, w.n_categories)
    item_cat = rng.integers(0, w.n_categories, w.n_items)
    item_cat[:w.n_categories] = np.arange(w.n_categories)
    item_vec = cat_vec[item_cat] + w.item_vec_noise * rng.normal(size=(w.n_items, dim))
    quality = rng.normal(size=w.n_items)
    appeal = rng.normal(size=w.n_items)
    log_price = cat_log_price[item_cat] + w.price_item_std * rng.normal(size=w.n_items)
    item_price = np.maximum(np.round(np.exp(log_price), 2), 0.5)
    item_pop = zipf_weights(rng, w.n_items, w.item_popularity_zipf)

    taste = rng.normal(size=(w.n_users, dim)) / np.sqrt(dim)
    sensitivity = np.exp(w.sensitivity_std * rng.normal(size=w.n_users))
    like_bias = w.like_bias_std * rng.normal(size=w.n_users)
    buy_bias = w.buy_bias_std * rng.normal(size=w.n_users)
    age = rng.integers(0, 7, w.n_users)
    pref_device = rng.choice(3, w.n_users, p=np.asarray(w.device_probs) / sum(w.device_probs))
    activity = zipf_weights(rng, w.n_users, w.user_activity_zipf)

    user = rng.choice(w.n_users, n, p=activity)
    item = rng.choice(w.n_items, n, p=item_pop)
    day = rng.integers(0, w.days, n)
    hour = rng.choice(24, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    device = np.where(rng.random(n) < 0.85, pref_device[user], rng.integers(0, 3, n))

    price = item_price[item]
    log_p = np.log(price) - w.price_log_mean
    shared = w.taste_coef * np.einsum("nd,nd->n", taste[user], item_vec[item])
    mu_like = (shared + w.quality_coef_like * quality[item] + w.appeal_coef * appeal[item]
               + w.like_price_coef * log_p + like_bias[user])
    mu_buy = (shared + w.quality_coef_buy * quality[item] - w.buy_price_coef * sensitivity[user] * log_p
              + buy_bias[user] + np.asarray(w.device_effect)[device])
    engagement = w.engagement_coef * rng.normal(size=n)
    z_like = mu_like + engagement + w.event_noise * rng.normal(size=n)
    z_buy = mu_buy + engagement + w.event_noise * rng.normal(size=n)
    like_base, buy_base = solve_base(z_like, w.like_rate), solve_base(z_buy, w.buy_rate)
    z_like, z_buy = z_like + like_base, z_buy + buy_base
    like = rng.random(n) < sigmoid(z_like)
    buy = rng.random(n) < sigmoid(z_buy)

    like_intent, buy_intent = _standardised(z_like), _standardised(z_buy)
    dwell = np.maximum(1.0, np.round(np.exp(
        w.dwell_log_mean + w.dwell_like_coef * like_intent + w.dwell_buy_coef * buy_intent
        + w.dwell_price_coef * log_p + w.dwell_noise * rng.normal(size=n)), 1))
    comments = rng.random(n) < sigmoid(
        w.comments_bias + w.comments_buy_coef * buy_intent + w.comments_like_coef * like_intent)

    columns = {
        "user_id": user.astype(str), "user_age": age[user], "item_id": item.astype(str),
        "category_id": item_cat[item].astype(str), "price": price, "device": np.asarray(DEVICES)[device],
        "hour": hour, "dwell_time": dwell, "viewed_comments": comments, DAY: day, LIKE: like, BUY: buy,
    }
    if latents:
        columns.update(mu_like=mu_like + like_base, mu_buy=mu_buy + buy_base, z_like=z_like, z_buy=z_buy)
    order = np.lexsort((hour, day))
    return {k: (v if v.dtype.kind in "Uf" else v.astype(np.int64))[order] for k, v in columns.items()}


def oracle_aucs(columns: Mapping[str, np.ndarray], days: int | None = None) -> dict[str, float]:
    """Held-out (last day) AUCs of the true logits, the ceilings of the world's table.

    ``columns`` from ``simulate_multitask(..., latents=True)``.  Per task t:
    ``<t>_student`` (mu_t: the best from regular features), ``<t>_teacher``
    (z_t: also the event-level part privileged features hint at),
    ``<t>_from_other`` (the other task's mu_t ranking t's label: what naive
    cross-task distillation offers) and ``<t>_multi_auc`` (mu_t's Multi-AUC,
    Eq. (12) of CrossDistil, like first as task A).
    """
    test = columns[DAY] == (columns[DAY].max() if days is None else days - 1)
    like, buy = columns[LIKE][test], columns[BUY][test]
    result = {}
    for task, other, label, role in ((LIKE, BUY, like, TASK_A), (BUY, LIKE, buy, TASK_B)):
        mu = columns[f"mu_{task}"][test]
        result.update({f"{task}_student": exact_auc(label, mu),
                       f"{task}_teacher": exact_auc(label, columns[f"z_{task}"][test]),
                       f"{task}_from_other": exact_auc(label, columns[f"mu_{other}"][test]),
                       f"{task}_multi_auc": multi_auc(like, buy, mu, role)})
    return result


def multitask_hash_buckets(world: MultitaskWorld) -> dict[str, int]:
    """Hash bucket counts (~2x the id space) of the id-like columns."""
    return {"user_id": 2 * world.n_users, "item_id": 2 * world.n_items, "category_id": 2 * world.n_categories}


def multitask_features(columns: Mapping[str, np.ndarray], world: MultitaskWorld) -> list[dict]:
    """The ``features:`` entries of the world's future config (boundaries from the train days)."""
    train = columns[DAY] < world.days - 1
    buckets = multitask_hash_buckets(world)
    return [feature_config(col, buckets.get(col.name), columns[col.name][train]) for col in MULTITASK_FEATURES]


def write_multitask_csvs(columns: Mapping[str, np.ndarray], world: MultitaskWorld, out_dir: str) -> list[str]:
    """Writes ``train/day-XX.csv`` (days 0..days-2) and ``test/day-XX.csv`` (the last day) with every
    column of MULTITASK_COLUMNS; returns their paths.  Rows must be sorted by day."""
    by_name = {c.name: c for c in MULTITASK_FEATURES}
    text = [as_strings(by_name.get(k), columns[k]) for k in MULTITASK_COLUMNS]
    lines = [",".join(r) for r in zip(*text)]
    bounds = np.searchsorted(columns[DAY], np.arange(world.days + 1))
    paths = []
    for d in range(world.days):
        split = "test" if d == world.days - 1 else "train"
        paths.append(os.path.join(out_dir, split, f"day-{d:02d}.csv"))
        write_csv(paths[-1], ",".join(MULTITASK_COLUMNS), lines[bounds[d]:bounds[d + 1]])
    return paths


def generate_multitask(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8,
                       **world) -> list[str]:
    """Simulates the two-task world and writes its CSV files under ``out_dir``; returns their paths.

    ``world`` overrides :class:`MultitaskWorld` fields."""
    world = MultitaskWorld.for_rows(rows, days, **world)
    return write_multitask_csvs(simulate_multitask(world, seed), world, out_dir)
