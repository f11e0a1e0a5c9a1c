"""A synthetic impression log where CTR models of different kinds learn different things.

Why this exists. Ensembled CTR prediction via knowledge distillation (Zhu et
al. 2020) distils several teachers (DeepFM, DCN, xDeepFM: Eqs. (1)-(4)) into
one DNN student, through a teacher gating network that weighs each teacher
per example (Section 3.3, Eqs. (10)-(11)).  An ensemble only helps when its
teachers differ, i.e. when each one captures a part of the click logit the
others miss.  The models differ by the feature interactions they can express:
LR only first-order weights, FM also pairwise inner products of field
embeddings, and the cross network (DCN-v2), the CIN (xDeepFM) and an MLP also
higher orders.  This world's click logit is the sum of exactly those three
parts, with their sizes as world fields, so which model can reach which AUC is
designed, not accidental.

Generative story (one row per impression, label ``click``).  ``F = 20``
categorical fields ``c01`` .. ``c20`` (:func:`field_names`), drawn independently,
each by a Zipf-like popularity ``p_f`` over its values (exponent
``value_zipf``); ``c19`` and ``c20`` are id-like, with ``id_cardinality``
values each (``rows // 20``), the others have the fixed ``cardinalities``
(2 .. 3,000).  The click logit::

    z = first(x) + second(x) + higher(x) + base,   click ~ Bernoulli(sigmoid(z))

    first(x)  = sum_f w_f[x_f]                                  (every field)
    second(x) = sum_{i<j in PAIR_FIELDS} <v_i[x_i], v_j[x_j]>   (FM's term; v in R^pair_dim)
    higher(x) = sum_{(a,b,c) in TRIPLES} sum_r u_a[x_a,r] u_b[x_b,r] u_c[x_c,r]
                                                                (rank triple_rank products)

* Each part is *pure* in the ANOVA sense: every weight, latent vector and
  factor has mean zero under its field's popularity, and fields are
  independent, so ``second`` has zero mean given any one field and ``higher``
  given any two.  The three parts are uncorrelated, and ``first`` is (up to
  the sigmoid) the best any first-order model can do, ``first + second`` the
  best for FM.  Nothing in ``higher`` leaks into what LR or FM can express.
* Each part is scaled so that its std over the value distributions (computed
  exactly from the popularities, not from the sampled rows) is
  ``first_order_scale``, ``second_order_scale``, ``higher_order_scale``.
* ``second`` is FM's own form over the 10 :data:`PAIR_FIELDS` (45 pairs, the
  two id-like fields among them: a user x item-like factorization), so an FM
  with ``dim >= pair_dim`` expresses it exactly (zero vectors elsewhere).
* ``higher`` is four disjoint 3-field crosses (:data:`TRIPLES`), each a sum of
  ``triple_rank`` products of three per-value factors, a degree-3 term that
  CIN computes literally (a Hadamard product of three field embeddings, summed
  over the dimension) and DCN-v2's two cross layers as cubic polynomials of the
  embeddings; an MLP approximates it.  Its fields have at most 1,000 values so
  that a few hundred thousand impressions cover their combinations.
  A field holds at most ``pair_dim + triple_rank = 8 <= EMBEDDING_DIM`` latent
  coordinates, so 16-dim embeddings can hold every part.
* ``base`` is solved so the click rate equals ``click_rate`` (15 %).

Oracle AUCs (defaults, 400,000 rows, the test day's ~50,000 rows, the true
logit restricted to its parts; :func:`oracle_aucs`, command below), seeds 0 / 1 / 2:

    first order only   0.7130 / 0.7127 / 0.7102
    first + second     0.7889 / 0.7847 / 0.7802
    all (the truth)    0.8338 / 0.8307 / 0.8262

    python -c "from pfd_tf.data.synthetic_ensemble import *; \\
               w = EnsembleWorld.for_rows(DEFAULT_ROWS); \\
               [print(s, oracle_aucs(simulate_ensemble(w, s, latents=True))) for s in (0, 1, 2)]"

Intended gaps (the parameters were chosen once, from first principles, and
kept after this oracle check; no model had been trained on this world): LR
can reach at most the first row, FM the second, DCN-v2, xDeepFM and a DNN the
third, i.e. gaps of ~0.07 (LR to FM) and ~0.045 (FM to the higher-order
models) at the oracle.  Reachable AUCs are lower (tail values and id pairs
are seen a few times only); the expectation, not yet measured, is the
ordering LR < FM < (DCN-v2, xDeepFM, DNN) at 200k-600k rows with gaps of
~0.01-0.03: the higher-order fields are small enough to learn, the id-like
pairs are not fully learnable by anyone.  The risk to that ordering: a pure
3-way term gives gradient descent no first- or second-order signal to start
from, so a deep model must find it from the random embeddings' chance
correlations (easy for fields of a few values, slower for 1,000).  FM and
the cross/CIN teachers then err on different rows: FM lacks ``higher``, and
an MLP learns ``second``'s inner products less well than FM (Rendle et al.
2020), which is what a gated ensemble can exploit.

All sizes and scales live in the frozen :class:`EnsembleWorld` dataclass.
:func:`generate_ensemble` simulates (:func:`simulate_ensemble`, numpy only,
vectorised) and writes ``train/day-XX.csv``, ``test/day-XX.csv`` and
``config.yaml`` in the layout of the CVR and CTR worlds
(:mod:`pfd_tf.data.synthetic`); it is the ``ensemble`` scenario of ``pfd-data``.
The config trains three teachers (FM, DCN-v2, xDeepFM) over the regular
features and a DNN student, distilled through the gating network (Eq. (11)).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from pfd_tf.data.synthetic import (
    DAY,
    Column,
    _FlowDict,
    _solve_base,
    _vocab,
    write_days,
    _zipf_weights,
    feature_config,
    run_config,
)
from pfd_tf.metrics import exact_auc

LABEL = "click"
EMBEDDING_DIM = 16
"""Every field's embedding size: FM, CIN and AutoInt stack the fields as ``[batch, fields, dim]``."""
N_FIELDS = 20
ID_FIELDS = ("c19", "c20")
"""The id-like fields, ``id_cardinality`` values each; the others have ``cardinalities``."""
PAIR_FIELDS = ("c03", "c05", "c08", "c10", "c12", "c14", "c16", "c18", "c19", "c20")
"""The fields of the second-order part: every pair of them interacts (45 pairs)."""
TRIPLES = (("c02", "c09", "c13"), ("c04", "c11", "c15"), ("c06", "c12", "c14"), ("c07", "c10", "c17"))
"""The 3-field crosses of the higher-order part (cardinalities 3x16x50, 5x24x200, 8x32x100, 10x20x1000)."""
VOCABULARY_MAX = 1000
"""Fields with at most this many values are written with their vocabulary, so that no hash
collision blurs a cross (every field of TRIPLES has at most 1,000); larger ones (c18) and the
id-like fields, whatever their size, are hashed into twice their values' count, as the CVR and
CTR worlds' ids."""
DEFAULT_ROWS = 400_000
EPOCHS = 1
"""Passes over the train days: one.  Deep CTR models over sparse ids tend to overfit from the
second epoch on (the "one-epoch" phenomenon), and the tail of the id-like fields here is seen a
few times only; ``--set train.epochs=2`` trains two."""
OPTIMIZER = "adam"
LEARNING_RATE = 0.002
"""The written config's optimizer and peak rate: Adam, as the ensemble paper trains (Section 4.1.3:
Adam, rate 0.001) and DeepCTR does, at the rate chosen on world 100 (400,000 rows, one epoch; the
student's held-out AUC: Adam 0.001 0.7022, Adam 0.002 0.7036, Adagrad 0.4 0.7007, Adagrad 1.6 with
every teacher on its own tables 0.6980).  The config shipped before trained with Adagrad at 1.6 and
diverged on worlds 0, 1 and 2 (student AUC 0.55, 0.49, 0.52, exit 0): the four networks read the
same tables, and at Adagrad's large first steps FM's pairwise term (190 pairs of 16-dim rows) blew up
first, near step 33 of the warm-up's 34 (rate ~1.5), then xDeepFM, the student and DCN-v2; each
network alone trains at 1.6, and so did the four together at 0.8 over the first 100 steps of world 1
(docs/results.md, issues 19 and 20).
Adagrad at 1.6 also kills xDeepFM's CIN maps and its DNN part (ReLU units pushed negative by the
first steps), which Adam at these rates leaves alive."""


@dataclasses.dataclass(frozen=True)
class EnsembleWorld:
    """Sizes and scales of the synthetic ensemble world (tune here)."""

    rows: int = DEFAULT_ROWS
    """Number of impressions (CSV rows), all days together."""
    days: int = 8
    """Days of impression logs; the last one is the held-out test day."""
    cardinalities: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 50, 100, 200,
                                      500, 1000, 3000)
    """Number of values of the fields c01 .. c18 (in order)."""
    id_cardinality: int = 20_000
    """Number of values of each id-like field (c19, c20); ``for_rows`` makes it rows // 20."""
    value_zipf: float = 1.0
    """Zipf exponent of every field's value popularity (1: the top value of an id-like field
    of 20,000 values is ~9 % of its impressions)."""

    # --- click logit ---------------------------------------------------------
    first_order_scale: float = 1.0
    """Std of the first-order part (per-field, per-value weights)."""
    field_importance_std: float = 0.5
    """Fields differ in how much their first-order weights matter: field f's weights are
    N(0, 1) times exp(field_importance_std * N(0, 1)), before the part is scaled."""
    second_order_scale: float = 0.8
    """Std of the second-order part (FM's pairwise inner products over PAIR_FIELDS)."""
    pair_dim: int = 4
    """Dimension of the second-order latent vectors."""
    higher_order_scale: float = 0.8
    """Std of the higher-order part (the TRIPLES' products of three factors)."""
    triple_rank: int = 4
    """Number of three-factor products summed per triple."""
    click_rate: float = 0.15
    """Target click rate; the base logit is solved to match it."""

    @classmethod
    def for_rows(cls, rows: int, days: int = 8, **overrides) -> "EnsembleWorld":
        """A world whose id-like fields are sized for ``rows`` impressions (~20 per id on average)."""
        sizes = dict(rows=rows, days=days, id_cardinality=max(100, rows // 20))
        sizes.update(overrides)
        return cls(**sizes)

    def field_cardinalities(self) -> dict[str, int]:
        """``{field: number of values}`` for c01 .. c20."""
        cards = list(self.cardinalities) + [self.id_cardinality] * len(ID_FIELDS)
        return dict(zip(field_names(), cards))

    def validate(self) -> None:
        if self.days < 2:
            raise ValueError(f"days must be >= 2 (train + test days), got {self.days}")
        if self.rows < 10 * self.days:
            raise ValueError(f"rows must be >= 10 * days, got {self.rows}")
        if len(self.cardinalities) != N_FIELDS - len(ID_FIELDS):
            raise ValueError(f"cardinalities must give {N_FIELDS - len(ID_FIELDS)} fields, "
                             f"got {len(self.cardinalities)}")
        if min(self.cardinalities) < 2 or self.id_cardinality < 2:
            raise ValueError("every field needs at least 2 values (cardinalities, id_cardinality)")
        for name in ("first_order_scale", "second_order_scale", "higher_order_scale",
                     "field_importance_std", "value_zipf"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.pair_dim < 1 or self.triple_rank < 1:
            raise ValueError("pair_dim and triple_rank must be >= 1")
        if self.pair_dim + self.triple_rank > EMBEDDING_DIM:
            raise ValueError(f"pair_dim + triple_rank must be <= {EMBEDDING_DIM} (the embedding "
                             "dimension), or no model of the zoo could express the logit")
        if not 0 < self.click_rate < 1:
            raise ValueError(f"click_rate must be in (0, 1), got {self.click_rate}")


def field_names() -> tuple[str, ...]:
    return tuple(f"c{i:02d}" for i in range(1, N_FIELDS + 1))


def _hashed(name: str, card: int) -> bool:
    return name in ID_FIELDS or card > VOCABULARY_MAX


def ensemble_features(world: EnsembleWorld) -> tuple[Column, ...]:
    """The columns: every field categorical, regular, with EMBEDDING_DIM dims; all but the
    id-like and the largest ones by vocabulary."""
    return tuple(Column(name, "int", "categorical", "regular", "context", EMBEDDING_DIM,
                        None if _hashed(name, card) else _vocab(card))
                 for name, card in world.field_cardinalities().items())


def ensemble_hash_buckets(world: EnsembleWorld) -> dict[str, int]:
    """Hash bucket counts (2x the values) of the fields written without a vocabulary."""
    return {name: 2 * card for name, card in world.field_cardinalities().items() if _hashed(name, card)}


# --------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------
def _centred(rng: np.random.Generator, p: np.ndarray, width: int) -> np.ndarray:
    """``[len(p), width]`` N(0, 1) draws, minus their mean under the popularity ``p``."""
    x = rng.normal(size=(len(p), width))
    return x - p @ x


def _covariance(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """E_p[x x^T] of per-value vectors ``x`` (rows) under the popularity ``p``."""
    return (x * p[:, None]).T @ x


def simulate_ensemble(world: EnsembleWorld, seed: int, latents: bool = False) -> dict[str, np.ndarray]:
    """Simulates one impression log; returns ``{column: array}``: c01 .. c20 (int value ids), day, click.

    Rows are sorted by day (then by draw).  With ``latents=True`` it also
    returns, per row, the logit's parts ``first_order``, ``second_order``,
    ``higher_order`` and the whole ``logit`` (base included).
    """
    world.validate()
    w, rng = world, np.random.default_rng(seed)
    n, names = w.rows, field_names()
    cards = w.field_cardinalities()

    # The world: popularities, then each part's per-value parameters, centred and scaled.
    pop = {f: _zipf_weights(rng, cards[f], w.value_zipf) for f in names}
    importance = np.exp(w.field_importance_std * rng.normal(size=len(names)))
    weight = {f: g * _centred(rng, pop[f], 1)[:, 0] for f, g in zip(names, importance)}
    var = sum(float(pop[f] @ weight[f] ** 2) for f in names)
    weight = {f: x * w.first_order_scale / np.sqrt(var) for f, x in weight.items()}

    vec = {f: _centred(rng, pop[f], w.pair_dim) for f in PAIR_FIELDS}
    cov = [_covariance(pop[f], vec[f]) for f in PAIR_FIELDS]
    var = sum(float(np.sum(a * b)) for i, a in enumerate(cov) for b in cov[i + 1:])
    vec = {f: x * np.sqrt(w.second_order_scale / np.sqrt(var)) for f, x in vec.items()}

    factors = [[_centred(rng, pop[f], w.triple_rank) for f in triple] for triple in TRIPLES]
    var = sum(float(np.sum(np.prod([_covariance(pop[f], u) for f, u in zip(triple, us)], axis=0)))
              for triple, us in zip(TRIPLES, factors))
    factors = [[u * (w.higher_order_scale ** 2 / var) ** (1 / 6) for u in us] for us in factors]

    # Impressions: every field by its popularity, independently; days uniform.
    x = {}
    for f in names:
        cdf = np.cumsum(pop[f])
        cdf[-1] = 1.0
        x[f] = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), cards[f] - 1)
    day = rng.integers(0, w.days, n)

    first = sum(weight[f][x[f]] for f in names)
    stacked = np.stack([vec[f][x[f]] for f in PAIR_FIELDS], axis=1)  # [n, fields, pair_dim]
    second = 0.5 * ((stacked.sum(1) ** 2).sum(1) - (stacked ** 2).sum((1, 2)))  # FM's identity
    higher = sum(np.prod([u[x[f]] for f, u in zip(triple, us)], axis=0).sum(1)
                 for triple, us in zip(TRIPLES, factors))
    logit = first + second + higher
    base = _solve_base(logit, w.click_rate)
    click = rng.random(n) < 1.0 / (1.0 + np.exp(-(logit + base)))

    columns = {f: x[f] for f in names}
    columns.update({DAY: day, LABEL: click.astype(np.int64)})
    if latents:
        columns.update(first_order=first, second_order=second, higher_order=higher, logit=logit + base)
    order = np.argsort(day, kind="stable")
    return {k: v[order] for k, v in columns.items()}


def oracle_aucs(columns: Mapping[str, np.ndarray], days: int | None = None) -> dict[str, float]:
    """AUCs on the test day (the last) of the true logit restricted to its parts.

    ``columns`` from ``simulate_ensemble(..., latents=True)``.  Returns
    ``{"first": ..., "first_second": ..., "all": ...}``: the best an LR, an FM
    and a model of every order can reach on these rows (up to the sigmoid).
    """
    day = columns[DAY]
    test = day == (day.max() if days is None else days - 1)
    label = columns[LABEL][test]
    first = columns["first_order"][test]
    second = columns["second_order"][test]
    higher = columns["higher_order"][test]
    return {"first": exact_auc(label, first), "first_second": exact_auc(label, first + second),
            "all": exact_auc(label, first + second + higher)}


# --------------------------------------------------------------------------
# Writing: CSV files per day + config.yaml
# --------------------------------------------------------------------------
TEACHERS = [
    # The ensemble paper's teachers are DeepFM, DCN and xDeepFM (Section 3.4.1); here FM stands
    # for the second-order model, so that the teachers differ by the orders they express.
    {"name": "fm", "model": "fm", "features": "regular"},
    {"name": "dcn_v2", "model": "dcn_v2", "features": "regular", "cross_layers": 2, "cross_rank": 16},
    {"name": "xdeepfm", "model": "xdeepfm", "features": "regular", "cin_layers": [64, 64]},
]
MODEL = {"student_tower": [256, 128], "teacher_tower": [256, 128]}
DISTILL = {"ensemble": "gating", "lambda": 0.5}  # Eq. (7) with the gated teacher of Eqs. (10)-(11)


def ensemble_config(columns: Mapping[str, np.ndarray], world: EnsembleWorld, seed: int) -> dict:
    """The config.yaml of a simulated log: the other worlds' data, features and train
    sections, with three teachers of the zoo and a gated DNN student."""
    train = columns[DAY] < world.days - 1
    buckets = ensemble_hash_buckets(world)
    features = [feature_config(col, buckets.get(col.name), columns[col.name][train])
                for col in ensemble_features(world)]
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["train"]["optimizer"] = OPTIMIZER
    config["data"]["label"] = LABEL
    config["model"] = dict(MODEL)
    config["distill"] = dict(DISTILL)
    return {"data": config["data"], "features": config["features"],
            "teachers": [_FlowDict(t) for t in TEACHERS], "student": {"model": "dnn"},
            "model": config["model"], "distill": config["distill"], "train": config["train"]}


def write_ensemble_dataset(columns: Mapping[str, np.ndarray], world: EnsembleWorld, seed: int,
                           out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last day)
    and ``config.yaml``; returns the config path. Rows must be sorted by day."""
    cards = world.field_cardinalities()
    names = list(field_names()) + [DAY, LABEL]
    text = [np.asarray(_vocab(cards[f]), dtype=object)[columns[f]] for f in field_names()]
    text += [np.asarray(_vocab(world.days), dtype=object)[columns[DAY]],
             np.asarray(_vocab(2), dtype=object)[columns[LABEL]]]
    lines = [",".join(r) for r in zip(*(t.tolist() for t in text))]
    header = ",".join(names)
    return write_days(out_dir, header, lines, columns[DAY], world.days, ensemble_config(columns, world, seed))


def generate_ensemble(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the ensemble world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`EnsembleWorld` fields (e.g. ``higher_order_scale=0``)."""
    world = EnsembleWorld.for_rows(rows, days, **world)
    return write_ensemble_dataset(simulate_ensemble(world, seed), world, seed, out_dir)
