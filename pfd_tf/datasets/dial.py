"""A synthetic click log with a dial for how much the privileged feature knows about the label.

Why this exists. Against a strong baseline, PFD's student gained nothing on
the CVR and CTR worlds, whose teachers are far more accurate than their
students (AUC 0.85-0.90 against 0.77-0.84).  A hypothesis: for a calibrated
teacher T = E[y | x, x*], the soft label's noise around P(y | x) is

    Var(T | x) = p(1 - p) - E[Var(y | x, x*) | x],   p = P(y | x),

so soft labels remove the part of the label noise the privileged features
explain *and the teacher still leaves*: nothing when x* determines y (T = y),
nothing to learn when x* knows nothing (T = p, the teacher is the student).
This world lets one turn that knob, and the id space's size, and computes the
quantities of the formula from its own parameters (:func:`oracle_quantities`).

Generative story (one row per click, label ``purchase``): a latent-utility
(probit) model whose whole label noise is one event-level draw ``eta``::

    f(x)  = user_bias[u] + item_bias[i] + <taste[u], item_vec[i]>      (sparse ids)
            + category[cat(i)] + segment[seg(u)] + hour[h] + device[d]  (dense context)
    purchase = 1[f(x) + base + eta > 0],   eta ~ N(0, 1), seen by no regular feature
    engagement = sqrt(rho) eta + sqrt(1 - rho) xi,   xi ~ N(0, 1)       (the privileged feature)

``rho`` (``privileged_share``, the dial) is the share of ``eta``'s variance
the privileged feature explains: ``E[eta | engagement] = sqrt(rho) engagement``
and ``Var(eta | engagement) = 1 - rho``.  Hence, with m = f(x) + base and
Phi the standard normal CDF,

    P(y | x)     = Phi(m)                                  what the student can reach
    P(y | x, x*) = Phi((m + sqrt(rho) engagement) / sqrt(1 - rho))   the PFD teacher's target

At rho = 0 the privileged column is pure noise (``xi``), independent of the
label and of x: the PFD teacher is the student.  As rho -> 1 it reveals
``eta`` and the label (rho = 1 is a leak: T = y).  The draws do not depend on
rho: one seed gives the same regular columns and labels at every setting,
only ``engagement`` changes, so the student's problem is the same along the
dial and only what the teacher knows moves.

Each part of f is centred and scaled to its ``*_std`` exactly over the
population (ids and context values are drawn uniformly and independently, so
the parts are uncorrelated).  Ids are drawn uniformly: a user and an item
appear ``rows_per_id`` times on average (Poisson), the id-space knob; the ids
hold ~72 % of f's variance at the defaults, so the fewer rows per id, the
less of f a student can learn.  ``base`` is solved so that the purchase rate
is ``purchase_rate``.

:func:`generate_dial` simulates (:func:`simulate_dial`, numpy only) and
writes ``train/day-XX.csv``, ``test/day-XX.csv`` and ``config.yaml`` with the
CVR world's writers (:mod:`pfd_tf.datasets.writer`); it is the ``dial``
scenario of ``pfd-data``.  ``DIAL_SETTINGS`` and ``ROWS_PER_ID_SETTINGS`` are
the settings ``benchmarks/regimes.py`` measures, fixed here before any
comparison of methods was run.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from pfd_tf.datasets.dial_config import write_dial_dataset
from pfd_tf.datasets.dial_world import DEFAULT_ROWS, DEVICES, LABEL, PRIVILEGED, DialWorld
from pfd_tf.datasets.writer import DAY
from pfd_tf.metrics import exact_auc


def normal_cdf(x) -> np.ndarray:
    """Phi(x), vectorised, through erfc's Chebyshev fit (Numerical Recipes, Section 6.2: relative
    error below 1.2e-7 everywhere)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    half_erfc = 0.5 * t * np.exp(-z * z + poly)  # Phi(-|x|)
    return np.where(x >= 0, 1.0 - half_erfc, half_erfc)


def _effect(rng: np.random.Generator, n: int, std: float) -> np.ndarray:
    """n values with mean 0 and std exactly ``std`` over the n (the population, drawn uniformly)."""
    x = rng.normal(size=n)
    x = x - x.mean()
    return std * x / (x.std() or 1.0)


def _solve_base(m: np.ndarray, rate: float) -> float:
    """b with mean(Phi(m + b)) == rate, by bisection (the probit twin of the CVR world's)."""
    lo, hi = -12.0, 12.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if normal_cdf(m + mid).mean() < rate else (lo, mid)
    return 0.5 * (lo + hi)


def simulate_dial(world: DialWorld, seed: int, latents: bool = False) -> dict[str, np.ndarray]:
    """Simulates one click log; returns ``{column: array}`` (DIAL_COLUMNS), rows sorted by day.

    With ``latents=True`` also ``utility`` (m = f(x) + base, per row) and ``eta``.  Every draw is
    made in the same order whatever ``privileged_share``: the dial changes ``engagement`` only.
    """
    world.validate()
    w, rng, n, ids = world, np.random.default_rng(seed), world.rows, world.n_ids
    user_bias, item_bias = _effect(rng, ids, w.user_bias_std), _effect(rng, ids, w.item_bias_std)
    taste, item_vec = rng.normal(size=(ids, w.taste_dim)), rng.normal(size=(ids, w.taste_dim))
    taste, item_vec = taste - taste.mean(0), item_vec - item_vec.mean(0)
    pair_var = float(np.sum((taste.T @ taste / ids) * (item_vec.T @ item_vec / ids)))  # tr(Cu Cv)
    taste *= math.sqrt(w.affinity_std / math.sqrt(pair_var or 1.0))
    item_vec *= math.sqrt(w.affinity_std / math.sqrt(pair_var or 1.0))
    item_category, user_segment = rng.integers(0, w.n_categories, ids), rng.integers(0, w.n_segments, ids)
    category, segment = _effect(rng, w.n_categories, w.category_std), _effect(rng, w.n_segments, w.segment_std)
    hour_effect, device_effect = _effect(rng, 24, w.hour_std), _effect(rng, len(DEVICES), w.device_std)

    user, item = rng.integers(0, ids, n), rng.integers(0, ids, n)
    hour, device, day = rng.integers(0, 24, n), rng.integers(0, len(DEVICES), n), rng.integers(0, w.days, n)
    f = (user_bias[user] + item_bias[item] + np.einsum("nd,nd->n", taste[user], item_vec[item])
         + category[item_category[item]] + segment[user_segment[user]] + hour_effect[hour]
         + device_effect[device])
    utility = f + _solve_base(f, w.purchase_rate)
    eta, xi = rng.normal(size=n), rng.normal(size=n)
    rho = w.privileged_share
    columns = {
        "user_id": user, "user_segment": user_segment[user], "item_id": item,
        "category_id": item_category[item], "hour": hour, "device": np.asarray(DEVICES)[device],
        PRIVILEGED: np.round(math.sqrt(rho) * eta + math.sqrt(1.0 - rho) * xi, 3),
        DAY: day, LABEL: (utility + eta > 0).astype(np.int64),
    }
    if latents:
        columns.update(utility=utility, eta=eta)
    order = np.argsort(day, kind="stable")
    return {k: v[order] for k, v in columns.items()}


def oracle_quantities(columns: Mapping[str, np.ndarray], world: DialWorld, test_only: bool = True) -> dict:
    """The hypothesis' quantities from the world's own parameters, on the test day (or every row).

    ``columns`` from ``simulate_dial(..., latents=True)``.  With p = Phi(m) = P(y | x) and
    T = P(y | x, x*) (the module docstring): the oracle AUCs of the student (p), the PFD teacher
    (T) and the LUPI teacher (``engagement`` alone; P(y | x*) rises with it); the mean label noise
    the student faces, E[p(1 - p)]; what the teacher leaves, E[T(1 - T)] = E[Var(y | x, x*)];
    their ratio ``noise_left`` (1 at rho = 0, 0 at a leak); and the soft label's noise around
    P(y | x), E[Var(T | x)] = E[p(1 - p)] - E[T(1 - T)] (law of total variance, in expectation).
    """
    keep = columns[DAY] == world.days - 1 if test_only else np.ones(len(columns[DAY]), dtype=bool)
    y, m, s = columns[LABEL][keep], columns["utility"][keep], columns[PRIVILEGED][keep]
    rho = world.privileged_share
    p = normal_cdf(m)
    teacher = y.astype(np.float64) if rho >= 1.0 else normal_cdf((m + math.sqrt(rho) * s) / math.sqrt(1.0 - rho))
    student_noise, teacher_noise = float(np.mean(p * (1 - p))), float(np.mean(teacher * (1 - teacher)))
    return {"privileged_share": rho, "rows_per_id": world.rows_per_id, "rows": int(keep.sum()),
            "student_auc": exact_auc(y, m), "teacher_auc": exact_auc(y, teacher), "lupi_auc": exact_auc(y, s),
            "student_mean_pq": student_noise, "teacher_mean_pq": teacher_noise,
            "noise_left": teacher_noise / student_noise, "soft_label_noise": student_noise - teacher_noise}


def generate_dial(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the dial world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`DialWorld` fields (e.g. ``privileged_share=0.9``, ``rows_per_id=5``)."""
    world = DialWorld(rows=rows, days=days, **world)
    return write_dial_dataset(simulate_dial(world, seed), world, seed, out_dir)
