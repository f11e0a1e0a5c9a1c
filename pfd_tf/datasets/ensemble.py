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

    python -c "from pfd_tf.datasets.ensemble import *; \\
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
(:mod:`pfd_tf.datasets.writer`); it is the ``ensemble`` scenario of ``pfd-data``.
The config trains three teachers (FM, DCN-v2, xDeepFM) over the regular
features and a DNN student, distilled through the gating network (Eq. (11)).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pfd_tf.datasets.ensemble_config import write_ensemble_dataset
from pfd_tf.datasets.ensemble_world import DEFAULT_ROWS, LABEL, PAIR_FIELDS, TRIPLES, EnsembleWorld, field_names
from pfd_tf.datasets.sampling import centred, covariance, solve_base, zipf_weights
from pfd_tf.datasets.writer import DAY
from pfd_tf.metrics import exact_auc


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
    pop = {f: zipf_weights(rng, cards[f], w.value_zipf) for f in names}
    importance = np.exp(w.field_importance_std * rng.normal(size=len(names)))
    weight = {f: g * centred(rng, pop[f], 1)[:, 0] for f, g in zip(names, importance)}
    var = sum(float(pop[f] @ weight[f] ** 2) for f in names)
    weight = {f: x * w.first_order_scale / np.sqrt(var) for f, x in weight.items()}

    vec = {f: centred(rng, pop[f], w.pair_dim) for f in PAIR_FIELDS}
    cov = [covariance(pop[f], vec[f]) for f in PAIR_FIELDS]
    var = sum(float(np.sum(a * b)) for i, a in enumerate(cov) for b in cov[i + 1:])
    vec = {f: x * np.sqrt(w.second_order_scale / np.sqrt(var)) for f, x in vec.items()}

    factors = [[centred(rng, pop[f], w.triple_rank) for f in triple] for triple in TRIPLES]
    var = sum(float(np.sum(np.prod([covariance(pop[f], u) for f, u in zip(triple, us)], axis=0)))
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
    base = solve_base(logit, w.click_rate)
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


def generate_ensemble(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8, **world) -> str:
    """Simulates the ensemble world and writes it under ``out_dir``; returns config.yaml's path.

    ``world`` overrides :class:`EnsembleWorld` fields (e.g. ``higher_order_scale=0``)."""
    world = EnsembleWorld.for_rows(rows, days, **world)
    return write_ensemble_dataset(simulate_ensemble(world, seed), world, seed, out_dir)
