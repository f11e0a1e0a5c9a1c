"""CrossDistil's augmented ranking tasks: quadruplets sampled within a batch, and the loss of Eq. (4).

Two binary tasks A and B split the rows into four label combinations (Eq. (2)
of "Cross-Task Knowledge Distillation in Multi-Task Recommendation"):
D^{++}, D^{+-}, D^{-+}, D^{--} (A's label first), and the marginal sets
D^{+.} = D^{++} u D^{+-}, D^{-.}, D^{.+}, D^{.-}.  The augmented task A+
learns the multipartite order x_{++} > x_{+-} > x_{-+} > x_{--}, which keeps
A's own order and breaks A's ties by B's label, so it never contradicts A
(Section 3.1):

    L^{A+} = sum over quadruplets of  -beta1 ln s(r_{++} - r_{+-}) - beta2 ln s(r_{-+} - r_{--})
             + sum over pairs (x_{+.}, x_{-.}) of  -ln s(r_{+.} - r_{-.})              (Eq. (4))

with r the augmented task's logit and s the sigmoid; B+ likewise with the
roles swapped: -beta1 ln s(r_{++} - r_{-+}) - beta2 ln s(r_{+-} - r_{--})
- ln s(r_{.+} - r_{.-}).

Sampling.  "It is impractical to enumerate every combination of samples as
in Eqn. (4).  Instead, we adopt bootstrap sampling" (Section 3.3): each step
draws `samples` quadruplets and pairs, every member uniformly with
replacement from its set *within the batch* (Algorithm 1, lines 4-5, one
quadruplet per row x by default), and Eq. (4)'s sums become means over them
(a fixed 1 / samples scale).  A batch lacking a set contributes zero to the
terms that need it (no NaN, no error): with a 1 % like rate many batches
have no x_{++}.

The draws are stateless: a function of the batch's labels and a seed
`[2]` (`step_seed(seed, step)`, the step being the optimizer's checkpointed
`iterations`), so a step recomputed after a worker failure under
ParameterServerStrategy draws the same quadruplets, and no random state
lives in a variable.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from pfd_tf._keras import tf

CELLS = ("++", "+-", "-+", "--")  # (y_A, y_B)
MARGINS = ("+.", "-.", ".+", ".-")  # A positive, A negative, B positive, B negative
KEYS = CELLS + MARGINS
FIRST, SECOND = "A", "B"  # the two roles of Eq. (4): the task whose label comes first, and the other

# Eq. (4) per role: (beta1's pair, beta2's pair, the unweighted pair), each (higher, lower).
_PAIRS = {
    FIRST: (("++", "+-"), ("-+", "--"), ("+.", "-.")),
    SECOND: (("++", "-+"), ("+-", "--"), (".+", ".-")),
}


@dataclasses.dataclass(frozen=True)
class Quadruplets:
    """One step's draws: `indices[key]` `[samples]` rows of the batch, `present[key]` 1.0 when the
    batch holds a row of that set (else 0.0, and the rows are meaningless)."""

    indices: Mapping[str, tf.Tensor]
    present: Mapping[str, tf.Tensor]

    def scores(self, logits: tf.Tensor, key: str) -> tf.Tensor:
        """`logits[indices[key]]`; the logits are padded by one row so that an empty batch indexes safely."""
        padded = tf.concat([tf.reshape(logits, [-1]), tf.zeros([1], logits.dtype)], axis=0)
        return tf.gather(padded, self.indices[key])


def step_seed(seed: int, step) -> tf.Tensor:
    """The `[2]` int64 seed of step `step` (e.g. `optimizer.iterations`) for a run seeded `seed`."""
    return tf.stack([tf.constant(int(seed), tf.int64), tf.cast(step, tf.int64)])


def sample_quadruplets(labels_a: tf.Tensor, labels_b: tf.Tensor, seed: tf.Tensor,
                       samples: int | None = None) -> Quadruplets:
    """Bootstrap draws from each of the eight sets of Eq. (2) within one batch.

    `labels_a`, `labels_b`: `[B]` 0/1 (any dtype; above 0.5 is positive);
    `seed`: `[2]` integers; `samples`: draws per set (default B).
    """
    a = tf.reshape(tf.cast(labels_a, tf.float32) > 0.5, [-1])
    b = tf.reshape(tf.cast(labels_b, tf.float32) > 0.5, [-1])
    masks = {"++": a & b, "+-": a & ~b, "-+": ~a & b, "--": ~a & ~b, "+.": a, "-.": ~a, ".+": b, ".-": ~b}
    count = tf.shape(a)[0] if samples is None else int(samples)
    uniform = tf.random.stateless_uniform([len(KEYS), count], seed=tf.cast(seed, tf.int64))
    indices, present = {}, {}
    for row, key in enumerate(KEYS):
        members = tf.concat([masks[key], [False]], axis=0)  # the pad row (index B) is never a member
        order = tf.argsort(tf.cast(~members, tf.int32), stable=True)  # the set's rows first
        size = tf.reduce_sum(tf.cast(members, tf.int32))
        picks = tf.cast(tf.floor(uniform[row] * tf.cast(size, tf.float32)), tf.int32)
        picks = tf.minimum(picks, tf.maximum(size - 1, 0))
        indices[key] = tf.gather(order, picks)
        present[key] = tf.cast(size > 0, tf.float32)
    return Quadruplets(indices, present)


def pair_loss(higher: tf.Tensor, lower: tf.Tensor) -> tf.Tensor:
    """Mean of -ln sigmoid(higher - lower) = softplus(lower - higher) (BPR, Rendle et al.); 0 for no pairs."""
    per_pair = tf.nn.softplus(lower - higher)
    return tf.reduce_sum(per_pair) / tf.maximum(tf.cast(tf.size(per_pair), per_pair.dtype), 1.0)


def augmented_ranking_loss(logits: tf.Tensor, quadruplets: Quadruplets, role: str = FIRST,
                           beta1: float = 1.0, beta2: float = 1.0) -> tf.Tensor:
    """Eq. (4): L^{A+} (`role=FIRST`, the task of `labels_a`) or L^{B+} (`role=SECOND`) of the augmented
    task's `logits` `[B]`, as means over the sampled quadruplets and pairs.  A term whose sets are not
    both in the batch is zero."""
    if role not in _PAIRS:
        raise ValueError(f"role must be {FIRST!r} or {SECOND!r}, got {role!r}")
    total = tf.zeros([], logits.dtype)
    for weight, (higher, lower) in zip((beta1, beta2, 1.0), _PAIRS[role]):
        both = tf.cast(quadruplets.present[higher] * quadruplets.present[lower], logits.dtype)
        term = pair_loss(quadruplets.scores(logits, higher), quadruplets.scores(logits, lower))
        total += float(weight) * both * term
    return total
