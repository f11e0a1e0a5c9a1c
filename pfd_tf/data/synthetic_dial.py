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
CVR world's writers (:mod:`pfd_tf.data.synthetic`); it is the ``dial``
scenario of ``pfd-data``.  ``DIAL_SETTINGS`` and ``ROWS_PER_ID_SETTINGS`` are
the settings ``benchmarks/regimes.py`` measures, fixed here before any
comparison of methods was run.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from pfd_tf.data.synthetic import (
    DAY,
    Column,
    _FlowDict,
    _as_strings,
    _vocab,
    feature_config,
    run_config,
    write_days,
)
from pfd_tf.metrics import exact_auc

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
    Column("hour", "int", "categorical", "regular", "context", 4, _vocab(24)),
    Column("device", "str", "categorical", "regular", "context", 4, DEVICES),
    Column(PRIVILEGED, "float", "numeric", "privileged", "context", 8, decimals=3),
)
DIAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in DIAL_FEATURES) + (DAY, LABEL)


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


# --------------------------------------------------------------------------
# Writing: CSV files per day + config.yaml (the CVR world's writers)
# --------------------------------------------------------------------------
EPOCHS = 2
"""Passes over the train days.  Chosen with LEARNING_RATE on the validation split of the validation world
(seed 100, 100,000 rows, defaults): baseline student AUC with Adam at 0.001 after 1 epoch 0.6911, 2: 0.6962,
3: 0.6923."""
OPTIMIZER = "adam"
LEARNING_RATE = 0.001
"""Adam's peak rate, chosen there for PFD (the config's mode): student AUC 0.6989 at 0.0005, 0.7032 at 0.001,
0.7002 at 0.002 (teacher 0.889 at 0.001); the baseline's best is the same rate (0.6841 at 0.0003, 0.6931 at
0.0005, 0.6962 at 0.001, 0.6926 at 0.002).  Adagrad, the other worlds' optimizer, left the ids far less
learned here: its baseline's best was 0.6742 (rate 0.2, 8 epochs; 0.671 at 0.4-1.6 with 2 or 4 epochs), and
neither embedding L2 (1e-5 to 1e-3), 4-dim id embeddings nor layer or batch normalization moved it above
0.673."""
MIN_STEPS_PER_EPOCH = 50
"""The batch is 1024 rows or fewer, so that an epoch has at least this many steps: Adam moves each weight by
about its rate per step, and a world of a few thousand rows (a smoke test) would otherwise train 5 steps and
stay near p = 0.5, worse than the constant predictor (measured at 3,000 rows: log loss 0.62 at 5 steps
against the constant's 0.50; 0.44 and 0.49 at ~100 steps of 52 rows, seeds 0 and 2)."""
MODEL = {"sharing": "shared", "student_private_features": [], "student_tower": [512, 256, 128],
         "teacher_tower": [512, 256, 128], "big_teacher_tower": [1024, 512, 256, 128]}


def dial_features(world: DialWorld) -> tuple[Column, ...]:
    """DIAL_FEATURES with the world's vocabularies (segments, categories); ids are hashed."""
    vocab = {"user_segment": _vocab(world.n_segments), "category_id": _vocab(world.n_categories)}
    return tuple(dataclasses.replace(c, vocabulary=vocab[c.name]) if c.name in vocab else c
                 for c in DIAL_FEATURES)


def dial_config(columns: Mapping[str, np.ndarray], world: DialWorld, seed: int) -> dict:
    """The config.yaml: the CVR world's sections with this label, ``engagement`` fed as its value
    (its mean and std computed from the training files), and an MLP student trained by PFD with Adam
    (LEARNING_RATE, EPOCHS, MIN_STEPS_PER_EPOCH)."""
    train = columns[DAY] < world.days - 1
    buckets = {"user_id": 2 * world.n_ids, "item_id": 2 * world.n_ids}
    features = []
    for col in dial_features(world):
        entry = feature_config(col, buckets.get(col.name), columns[col.name][train])
        if col.name == PRIVILEGED:  # a Gaussian signal: its value, not 20 quantile buckets
            entry = _FlowDict(name=col.name, kind="numeric", encoding="value", dim=col.dim, role=col.role,
                              side=col.side)
        features.append(entry)
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["data"]["label"] = LABEL
    config["model"] = dict(MODEL)
    config["train"].update(optimizer=OPTIMIZER,
                           batch_size=max(1, min(1024, int(train.sum()) // MIN_STEPS_PER_EPOCH)))
    return config


def write_dial_dataset(columns: Mapping[str, np.ndarray], world: DialWorld, seed: int, out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last day) and
    ``config.yaml``; returns the config path.  Rows must be sorted by day."""
    by_name = {c.name: c for c in DIAL_FEATURES}
    text = [_as_strings(by_name.get(k), columns[k]) for k in DIAL_COLUMNS]
    lines = [",".join(r) for r in zip(*text)]
    return write_days(out_dir, ",".join(DIAL_COLUMNS), lines, columns[DAY], world.days,
                      dial_config(columns, world, seed))


def generate_dial(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the dial world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`DialWorld` fields (e.g. ``privileged_share=0.9``, ``rows_per_id=5``)."""
    world = DialWorld(rows=rows, days=days, **world)
    return write_dial_dataset(simulate_dial(world, seed), world, seed, out_dir)
