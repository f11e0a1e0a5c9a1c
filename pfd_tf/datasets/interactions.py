"""A synthetic impression log whose click logit holds field interactions of order 1 to 4.

Why this exists.  KD-DAGFM (Tian et al., WSDM 2023) distils an expensive
interaction model (CIN, CrossNet, DCN-v2, ...) into a DAGFM student, whose
k-th propagation layer computes interactions of order k + 1 as paths in a
DAG of fields (Figure 2).  Its claim is that the student keeps the teacher's
accuracy at a fraction of its cost, which needs a world where high-order
interactions matter: where a model that multiplies field embeddings (DAGFM,
CIN, a cross network) can express the logit and a plain MLP over the
concatenated embeddings can only approximate it.

Generative story (one row per impression, label ``click``).  ``F = 16``
categorical fields ``c01`` .. ``c16``, drawn independently, each by a
Zipf-like popularity over its values (``cardinalities``, 2 .. 3,000).
Every value of a field has one latent vector ``u_f[x]`` in R^latent_dim,
shared by every interaction the field takes part in (as a model's embedding
is).  The click logit::

    z = first(x) + second(x) + third(x) + fourth(x) + base,   click ~ Bernoulli(sigmoid(z))

    first(x)  = sum_f w_f[x_f]                                               (every field)
    order k   = sum_{t in TUPLES[k]} sum_r a_t[r] prod_{f in t} u_f[x_f][r]   (k = 2, 3, 4)

with ``a_t`` a per-tuple weight of each latent coordinate (as DAGFM's edge
weights p weigh the coordinates of a path).  ``TUPLES[2]`` are the 28 pairs
of :data:`PAIR_FIELDS`, ``TUPLES[3]`` the four :data:`TRIPLES`,
``TUPLES[4]`` the two :data:`QUADRUPLES`; ``c16`` (3,000 values, hashed) has
a first-order weight only.

* Each part is pure in the ANOVA sense, as in the ensemble world
  (:mod:`pfd_tf.datasets.ensemble`): every weight and latent vector
  has mean zero under its field's popularity and fields are independent, so
  a product involving a field has zero mean given the others, the parts are
  uncorrelated, and ``first + ... + order k`` is the best a model of order
  at most k can do (up to the sigmoid).
* Each part is scaled so that its std over the value distributions (exact,
  from the popularities) is ``first_order_scale`` .. ``fourth_order_scale``.
* A field holds ``latent_dim = 4`` coordinates for all its interactions, so
  16-dim embeddings can hold the logit; a depth-3 DAGFM, a 3-layer cross
  network and a CIN of 3 layers reach order 4.
* ``base`` is solved so the click rate equals ``click_rate``.

Oracle AUCs (defaults, 400,000 rows, the test day's ~50,000 rows; the true
logit restricted to orders up to k, :func:`oracle_aucs`), seeds 0 / 1 / 2 / 100:

    first order            0.7168 / 0.7223 / 0.7147 / 0.7216
    up to second order     0.7619 / 0.7680 / 0.7632 / 0.7673
    up to third order      0.8003 / 0.8069 / 0.8009 / 0.8016
    up to fourth (all)     0.8193 / 0.8240 / 0.8188 / 0.8197

    python -c "from pfd_tf.datasets.interactions import *; \\
               w = InteractionsWorld.for_rows(DEFAULT_ROWS); \\
               [print(s, oracle_aucs(simulate_interactions(w, s, latents=True))) for s in (0, 1, 2, 100)]"

The scales were chosen once, for the oracle gaps, before any model was
trained.  A first draft let fields of up to 1,000 values interact; on the
validation world (100) its config's teacher and student both stayed at the
first-order level (validation AUC 0.71-0.72 after 1 to 4 epochs, Adagrad
or Adam, batches of 1,024: 340 steps an epoch), so the interacting fields
were made small (at most 50 values, every combination seen) before any
comparison of methods; at 4 epochs of batches of 256 both then learn
higher orders (a design-time check on the validation world, not a
recorded result).  :func:`generate_interactions` simulates and writes
``train/day-XX.csv``, ``test/day-XX.csv`` and ``config.yaml`` in the layout
of the other worlds; it is the ``interactions`` scenario of ``pfd-data``.
The config co-trains a DCN-v2 teacher (3 cross layers) with a DAGFM student
(inner, 3 propagation layers) on soft labels (lambda 0.5), with Adam
(:data:`OPTIMIZER`: under the other worlds' Adagrad no model here learnt
past the first order), its rate and length chosen on world 100.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping

import numpy as np

from pfd_tf.datasets.ensemble_world import EMBEDDING_DIM, LABEL, ensemble_features, ensemble_hash_buckets
from pfd_tf.datasets.phase_configs import write_phase_configs
from pfd_tf.datasets.sampling import centred, covariance, solve_base, vocab, zipf_weights
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, FlowDict, feature_config, write_days
from pfd_tf.metrics import exact_auc

N_FIELDS = 16
PAIR_FIELDS = ("c04", "c06", "c08", "c10", "c12", "c13")
"""The fields of the second-order part: every pair of them interacts (15 pairs)."""
TRIPLES = (("c01", "c05", "c09"), ("c02", "c07", "c11"), ("c03", "c08", "c12"), ("c06", "c10", "c13"))
"""The third-order crosses (cardinalities 2x6x16, 3x10x24, 4x12x32, 8x20x50)."""
QUADRUPLES = (("c01", "c03", "c07", "c10"), ("c02", "c05", "c09", "c12"))
"""The fourth-order crosses (2x4x10x20, 3x6x16x32)."""
TUPLES = {2: tuple(itertools.combinations(PAIR_FIELDS, 2)), 3: TRIPLES, 4: QUADRUPLES}
ORDERS = ("first", "second", "third", "fourth")
DEFAULT_ROWS = 400_000
OPTIMIZER = "adam"
"""The written config's optimizer: Adam, as KD-DAGFM's authors train (github.com/Ethan-TZ/DAGFM, train.py),
not the PFD paper's Adagrad that every other world's config uses.  On world 100 under Adagrad (rates 0.1 to
1.6, 1 to 6 epochs, the DAGFM edge weights at Xavier or the authors' N(0, 1) start) neither DAGFM, FM nor
LR got past the first order (test-day AUC 0.709-0.724); under Adam DAGFM alone learns the higher orders
(0.777): docs/results.md, "Why DAGFM did not learn the interactions world"."""
EPOCHS = 5
"""Passes over the training days, chosen on world 100 with LEARNING_RATE: DAGFM alone 0.7597 after 3 epochs,
0.7770 after 5, 0.7533 after 8 (it then over-fits)."""
LEARNING_RATE = 0.003
"""Adam's peak rate, chosen on world 100 (DAGFM alone, 3 epochs: 0.7597 at 0.003, 0.7669 at 0.01, 0.7529
at 0.03; at 5 epochs 0.003 gives 0.7770, 0.01 0.7625)."""
TEACHER_EPOCHS = 3
"""The teacher's own length in the pre-training phase (`config_teacher.yaml`), chosen on world 100: the
DCN-v2 teacher alone at LEARNING_RATE reaches 0.7639 after 3 epochs and over-fits to 0.7487 after 5."""


@dataclasses.dataclass(frozen=True)
class InteractionsWorld:
    """Sizes and scales of the synthetic interactions world (tune here)."""

    rows: int = DEFAULT_ROWS
    """Number of impressions (CSV rows), all days together."""
    days: int = 8
    """Days of impression logs; the last one is the held-out test day."""
    cardinalities: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 50, 200, 1000, 3000)
    """Number of values of the fields c01 .. c16 (in order); c01 .. c13 interact, c14 .. c16 do not."""
    value_zipf: float = 1.0
    """Zipf exponent of every field's value popularity."""
    latent_dim: int = 4
    """Coordinates of each value's latent vector, shared by all its interactions."""
    first_order_scale: float = 1.0
    """Std of the first-order part (per-field, per-value weights)."""
    field_importance_std: float = 0.5
    """Field f's first-order weights are N(0, 1) times exp(field_importance_std * N(0, 1))."""
    second_order_scale: float = 0.7
    """Std of the second-order part (the pairs of PAIR_FIELDS)."""
    third_order_scale: float = 0.7
    """Std of the third-order part (TRIPLES)."""
    fourth_order_scale: float = 0.5
    """Std of the fourth-order part (QUADRUPLES)."""
    click_rate: float = 0.15
    """Target click rate; the base logit is solved to match it."""

    @classmethod
    def for_rows(cls, rows: int, days: int = 8, **overrides) -> "InteractionsWorld":
        return cls(rows=rows, days=days, **overrides)

    def field_cardinalities(self) -> dict[str, int]:
        """``{field: number of values}`` for c01 .. c16."""
        return dict(zip(field_names(), self.cardinalities))

    def validate(self) -> None:
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (train + test days), got {self.days}")
        if self.rows < 10 * self.days:
            raise ValueError(f"rows must be >= 10 * days, got {self.rows}")
        if len(self.cardinalities) != N_FIELDS or min(self.cardinalities) < 2:
            raise ValueError(f"cardinalities must give {N_FIELDS} fields of at least 2 values each")
        scales = ("first_order_scale", "second_order_scale", "third_order_scale", "fourth_order_scale",
                  "field_importance_std", "value_zipf")
        for name in scales:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.latent_dim <= EMBEDDING_DIM:
            raise ValueError(f"latent_dim must be in 1..{EMBEDDING_DIM} (the embedding dimension)")
        if not 0 < self.click_rate < 1:
            raise ValueError(f"click_rate must be in (0, 1), got {self.click_rate}")


def field_names() -> tuple[str, ...]:
    return tuple(f"c{i:02d}" for i in range(1, N_FIELDS + 1))


def simulate_interactions(world: InteractionsWorld, seed: int, latents: bool = False) -> dict[str, np.ndarray]:
    """One impression log, ``{column: array}``: c01 .. c16 (int value ids), day, click; sorted by day.

    With ``latents=True`` also each row's parts ``first`` .. ``fourth`` and
    the whole ``logit`` (base included).
    """
    world.validate()
    w, rng = world, np.random.default_rng(seed)
    names, cards = field_names(), world.field_cardinalities()
    pop = {f: zipf_weights(rng, cards[f], w.value_zipf) for f in names}
    importance = np.exp(w.field_importance_std * rng.normal(size=len(names)))
    weight = {f: g * centred(rng, pop[f], 1)[:, 0] for f, g in zip(names, importance)}
    var = sum(float(pop[f] @ weight[f] ** 2) for f in names)
    weight = {f: x * w.first_order_scale / np.sqrt(var) for f, x in weight.items()}
    interacting = sorted({f for tuples in TUPLES.values() for t in tuples for f in t})
    latent = {f: centred(rng, pop[f], w.latent_dim) for f in interacting}
    cov = {f: covariance(pop[f], latent[f]) for f in interacting}
    coordinate = {k: [rng.normal(size=w.latent_dim) for _ in tuples] for k, tuples in TUPLES.items()}
    scales = {2: w.second_order_scale, 3: w.third_order_scale, 4: w.fourth_order_scale}
    for k, tuples in TUPLES.items():  # tuples of distinct fields are uncorrelated: the part's variance adds up
        var = sum(float(a @ np.prod([cov[f] for f in t], axis=0) @ a) for t, a in zip(tuples, coordinate[k]))
        coordinate[k] = [a * scales[k] / np.sqrt(var) for a in coordinate[k]]

    x = {}
    for f in names:
        cdf = np.cumsum(pop[f])
        cdf[-1] = 1.0
        x[f] = np.minimum(np.searchsorted(cdf, rng.random(w.rows), side="right"), cards[f] - 1)
    day = rng.integers(0, w.days, w.rows)
    parts = {"first": sum(weight[f][x[f]] for f in names)}
    for k, name in zip((2, 3, 4), ORDERS[1:]):
        parts[name] = sum(np.prod([latent[f][x[f]] for f in t], axis=0) @ a for t, a in zip(TUPLES[k], coordinate[k]))
    logit = sum(parts.values())
    base = solve_base(logit, w.click_rate)
    click = rng.random(w.rows) < 1.0 / (1.0 + np.exp(-(logit + base)))
    columns = {**x, DAY: day, LABEL: click.astype(np.int64)}
    if latents:
        columns.update(parts, logit=logit + base)
    order = np.argsort(day, kind="stable")
    return {k: v[order] for k, v in columns.items()}


def oracle_aucs(columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Test-day AUCs of the true logit up to each order: ``{"first": ..., "second": ..., "third": ...,
    "fourth": ...}`` (``second``: first + second order, ...), from ``simulate_interactions(latents=True)``."""
    test = columns[DAY] == columns[DAY].max()
    label, total, out = columns[LABEL][test], 0.0, {}
    for name in ORDERS:
        total = total + columns[name][test]
        out[name] = exact_auc(label, total)
    return out


TEACHERS = [{"name": "dcn_v2", "model": "dcn_v2", "features": "regular", "cross_layers": 3, "cross_rank": 16}]
STUDENT = {"model": "dagfm", "dagfm_type": "inner", "dagfm_layers": 3}
MODEL = {"student_tower": [256, 128], "teacher_tower": [256, 128]}
DISTILL = {"lambda": 0.5}  # soft labels, Eq. (7) of Zhu et al. 2020


def interactions_config(columns: Mapping[str, np.ndarray], world: InteractionsWorld, seed: int) -> dict:
    """The config.yaml: the other worlds' data, features and train sections, a DCN-v2 teacher, a DAGFM student."""
    train = columns[DAY] < world.days - 1
    buckets = ensemble_hash_buckets(world)
    features = [feature_config(col, buckets.get(col.name), columns[col.name][train])
                for col in ensemble_features(world)]
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["data"]["label"] = LABEL
    config["train"]["optimizer"] = OPTIMIZER
    return {"data": config["data"], "features": config["features"],
            "teachers": [FlowDict(t) for t in TEACHERS], "student": FlowDict(STUDENT), "model": dict(MODEL),
            "distill": dict(DISTILL), "train": config["train"]}


def generate_interactions(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the interactions world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`InteractionsWorld` fields (e.g. ``fourth_order_scale=0``)."""
    world = InteractionsWorld.for_rows(rows, days, **world)
    columns = simulate_interactions(world, seed)
    cards = world.field_cardinalities()
    text = [np.asarray(vocab(cards[f]), dtype=object)[columns[f]] for f in field_names()]
    text += [np.asarray(vocab(world.days), dtype=object)[columns[DAY]],
             np.asarray(vocab(2), dtype=object)[columns[LABEL]]]
    lines = [",".join(r) for r in zip(*(t.tolist() for t in text))]
    header = ",".join(list(field_names()) + [DAY, LABEL])
    config = interactions_config(columns, world, seed)
    write_phase_configs(out_dir, config, {"epochs": TEACHER_EPOCHS})  # KD-DAGFM's three phases, before config.yaml: written last, as ever
    return write_days(out_dir, header, lines, columns[DAY], world.days, config)
