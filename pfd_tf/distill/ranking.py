"""Ranking distillation: point-, pair- and list-wise losses of a student's scores against a teacher's, per list.

"Knowledge Distillation Techniques for Recommendation Systems" (the survey of
distillation across recall, pre-ranking and ranking) sorts the objectives a
ranking teacher hands an earlier stage of the cascade into three:

- point-wise: the teacher's top-K items of a list are positives, the rest
  negatives, and the student learns them by log loss (`pointwise_top_k`);
- pair-wise: pairs of a list ordered by the teacher, learnt by BPR,
  -log sigmoid(s_i - s_j) (`pairwise_bpr`);
- list-wise: the teacher's softmax distribution over a list as the target
  of the student's (`listwise_softmax`).

A list is the candidates of one request (rows sharing a group id).  Every
function here takes lists padded to `[G, L]` with a boolean `mask`
(`[G, L]`, True for a real item): lists of any length sit in one batch,
and each objective is a few dense ops over the list axis (a softmax, a
comparison of every item with every other, `[G, L, L]`), where a flat
`[B]` batch with group ids would need segment ops and, for the pairs, a
`[B, B]` same-list mask (`B^2` against `G L^2`).  `to_lists` turns a flat
batch (scores `[B]` and a group id per row, as the data hands it) into that
form.  Scores are logits; the teacher's are behind a stop-gradient.
Padded entries never count, whatever their value.
"""
from __future__ import annotations

from pfd_tf._keras import tf


def to_lists(group_ids: tf.Tensor, scores: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`[B]` scores and group ids -> (`[G, L]` scores, `[G, L]` mask).

    Lists come in the order of their first row, items in the order of their
    rows (the rows of a list need not be adjacent); L is the longest list,
    shorter lists are padded with 0.  Called on the teacher's and the
    student's scores with the same ids, it lays both out alike.
    """
    groups, index = tf.unique(tf.reshape(group_ids, [-1]))
    order = tf.argsort(index, stable=True)
    rows = tf.gather(index, order)
    values = tf.RaggedTensor.from_value_rowids(tf.gather(tf.reshape(scores, [-1]), order), rows,
                                               nrows=tf.size(groups, out_type=rows.dtype))
    mask = tf.RaggedTensor.from_value_rowids(tf.ones_like(order, tf.bool), rows,
                                             nrows=tf.size(groups, out_type=rows.dtype))
    return values.to_tensor(0), mask.to_tensor(False)


def pointwise_top_k(teacher: tf.Tensor, student: tf.Tensor, mask: tf.Tensor, k: int) -> tf.Tensor:
    """Mean over the real items of the log loss of the student's logit against "in the teacher's top k".

    An item is a positive when fewer than `k` items of its list score higher
    with the teacher: a list shorter than k is all positives, and items tied
    with the k-th are all positives (the labels do not depend on the order
    of the rows).
    """
    if k < 1:
        raise ValueError(f"pointwise_top_k: k must be >= 1, got {k}")
    teacher, mask = _checked(teacher, student, mask)
    higher = tf.logical_and(teacher[:, None, :] > teacher[:, :, None], mask[:, None, :])  # [G, item i, j]: t_j > t_i
    above = tf.reduce_sum(tf.cast(higher, tf.int32), axis=-1)
    labels = tf.cast(above < k, student.dtype)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=student)
    return _masked_mean(losses, mask)


def pairwise_bpr(teacher: tf.Tensor, student: tf.Tensor, mask: tf.Tensor, margin: float = 0.0) -> tf.Tensor:
    """Mean over the pairs (i, j) of a list with t_i > t_j + margin of -log sigmoid(s_i - s_j) (BPR).

    Ties (and, with `margin` > 0, pairs the teacher barely orders) make no
    pair; a batch without a pair has loss 0.
    """
    if margin < 0:
        raise ValueError(f"pairwise_bpr: margin must be >= 0, got {margin}")
    teacher, mask = _checked(teacher, student, mask)
    both = tf.logical_and(mask[:, :, None], mask[:, None, :])
    pairs = tf.logical_and(both, teacher[:, :, None] > teacher[:, None, :] + margin)  # [G, i, j]
    losses = tf.nn.softplus(-(student[:, :, None] - student[:, None, :]))  # -log sigmoid(s_i - s_j)
    return _masked_mean(losses, pairs)


def listwise_softmax(teacher: tf.Tensor, student: tf.Tensor, mask: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    """Mean over lists of tau^2 * CE(softmax(t / tau), softmax(s / tau)) over the list's real items.

    tau^2 keeps the gradient's scale as tau grows (Hinton et al.; the soft
    label's convention, `pfd_tf.distill.losses.distillation_loss`).  A list
    of one item has loss 0; a list with no real item does not count.
    """
    if temperature <= 0:
        raise ValueError(f"listwise_softmax: temperature must be > 0, got {temperature}")
    teacher, mask = _checked(teacher, student, mask)
    target = tf.nn.softmax(_masked_logits(teacher / temperature, mask), axis=-1)
    log_q = tf.nn.log_softmax(_masked_logits(student / temperature, mask), axis=-1)
    per_list = -tf.reduce_sum(tf.where(mask, target * log_q, 0.0), axis=-1)
    return temperature**2 * _masked_mean(per_list, tf.reduce_any(mask, axis=-1))


def _checked(teacher: tf.Tensor, student: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The teacher's scores detached and the mask as bool, after the shapes are checked."""
    if teacher.shape.rank != 2 or not teacher.shape.is_compatible_with(student.shape) \
            or not teacher.shape.is_compatible_with(mask.shape):
        raise ValueError(f"ranking losses take [lists, items] scores and mask of one shape; got teacher "
                         f"{teacher.shape}, student {student.shape}, mask {mask.shape}")
    return tf.stop_gradient(tf.cast(teacher, student.dtype)), tf.cast(mask, tf.bool)


def _masked_logits(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Padded entries far below any real one: exp(.) underflows to 0 in a softmax (finite, so 0 * it is 0)."""
    return tf.where(mask, logits, tf.fill(tf.shape(logits), tf.constant(-1e9, logits.dtype)))


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of `values` where `mask` holds; 0 where it never does."""
    weights = tf.cast(mask, values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))
