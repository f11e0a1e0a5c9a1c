"""The draws every synthetic world shares: Zipf popularity, grouped inverse-CDF sampling, a base logit
solved for a target rate, taste-driven category choice, centred per-value latent vectors.

They were written for the CVR world (:mod:`pfd_tf.datasets.cvr`) and are reused, unchanged, by the
CTR, ensemble, interactions, dial and multi-task worlds: a change here changes every world's data.
"""
from __future__ import annotations

import numpy as np


def vocab(n: int) -> tuple[str, ...]:
    """``("0", "1", ..., str(n - 1))``: the vocabulary of a small integer column."""
    return tuple(str(i) for i in range(n))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Zipf-like weights over n entities, assigned to ids in random order."""
    w = (np.arange(n) + 1.0) ** -exponent
    return rng.permutation(w / w.sum())


def sample_grouped(cdf: np.ndarray, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling from one of many distributions at once.

    ``cdf`` is flat: entries of group g are ``g + cumulative_prob`` (so the
    whole array is non-decreasing); ``group[k]`` picks the distribution for
    draw ``k`` and ``u[k]`` in [0, 1) is its uniform draw. Returns flat indices.
    """
    idx = np.searchsorted(cdf, group + u, side="right")
    return np.minimum(idx, len(cdf) - 1)


def solve_base(logit: np.ndarray, rate: float) -> float:
    """Base logit b such that mean(sigmoid(logit + b)) == rate (bisection)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sigmoid(logit + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def taste_category_cdf(taste: np.ndarray, cat_vec: np.ndarray, sharpness: float) -> np.ndarray:
    """Each user's softmax(sharpness * taste . category) CDF, offset by the user's
    index and flattened, so one `searchsorted` samples categories for many users."""
    logits = sharpness * taste @ cat_vec.T
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    cdf = np.cumsum(prob, axis=1)
    cdf[:, -1] = 1.0
    return (cdf + np.arange(len(taste))[:, None]).ravel()


def grouped_cdf(group: np.ndarray, weight: np.ndarray, n_groups: int):
    """(members, cdf) to draw a member of group g by weight: ``members[sample_grouped(cdf, g, u)]``.

    Every group drawn from must have at least one member.
    """
    members = np.argsort(group, kind="stable")
    g, w = group[members], weight[members]
    total = np.bincount(g, weights=w, minlength=n_groups)
    before = np.repeat(np.cumsum(total) - total, np.bincount(g, minlength=n_groups))
    cdf = np.minimum((np.cumsum(w) - before) / total[g], 1.0) + g
    return members, cdf


def draw_grouped(members_cdf, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each draw k, a member of group ``group[k]`` by weight (``members_cdf``: :func:`grouped_cdf`)."""
    members, cdf = members_cdf
    return members[sample_grouped(cdf, group, u)]


def centred(rng: np.random.Generator, p: np.ndarray, width: int) -> np.ndarray:
    """``[len(p), width]`` N(0, 1) draws, minus their mean under the popularity ``p``."""
    x = rng.normal(size=(len(p), width))
    return x - p @ x


def covariance(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """E_p[x x^T] of per-value vectors ``x`` (rows) under the popularity ``p``."""
    return (x * p[:, None]).T @ x


def draw_catalogue(rng: np.random.Generator, w) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The CVR and CTR worlds' categories and items, drawn in this order from `rng`:
    (cat_vec [n_categories, taste_dim], cat_log_price, item_cat (every category sells something), item_shop,
    item_vec = its category's vector + item_vec_noise N(0, 1)).  `w` has n_categories, taste_dim, n_items,
    n_shops, price_log_mean, price_category_std, item_vec_noise."""
    n_cat, dim = w.n_categories, w.taste_dim
    cat_vec = rng.normal(size=(n_cat, dim))
    cat_log_price = rng.normal(w.price_log_mean, w.price_category_std, n_cat)
    item_cat = rng.integers(0, n_cat, w.n_items)
    item_cat[:n_cat] = np.arange(n_cat)
    item_shop = rng.integers(0, w.n_shops, w.n_items)
    item_vec = cat_vec[item_cat] + w.item_vec_noise * rng.normal(size=(w.n_items, dim))
    return cat_vec, cat_log_price, item_cat, item_shop, item_vec
