"""Point-, pair- and list-wise ranking distillation against hand values: ties, lists of one item, padding."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf.distill.ranking import listwise_softmax, pairwise_bpr, pointwise_top_k, to_lists

# Three lists, padded to 3 items: A (3 items, distinct teacher scores), B (2 items tied by the teacher, then
# padding whose scores would matter if it counted), C (one item).
TEACHER = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 9.0], [3.0, 9.0, -9.0]], np.float32)
STUDENT = np.array([[1.0, -1.0, 0.0], [0.5, -0.5, 7.0], [2.0, -7.0, 7.0]], np.float32)
MASK = np.array([[True, True, True], [True, True, False], [True, False, False]])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _call(loss, **kwargs):
    return float(loss(tf.constant(TEACHER), tf.constant(STUDENT), tf.constant(MASK), **kwargs))


def test_pointwise_top_1_labels_the_teachers_best_item_and_every_tied_one():
    # A: labels (1, 0, 0); B: the tie puts both in the top 1: (1, 1); C: (1).  Log loss: softplus(-s) for a
    # positive, softplus(s) for a negative; the mean over the 6 real items.
    expected = (softplus(-1.0) + softplus(-1.0) + softplus(0.0) + softplus(-0.5) + softplus(0.5) + softplus(-2.0)) / 6
    assert _call(pointwise_top_k, k=1) == pytest.approx(expected, rel=1e-6)


def test_pointwise_top_2_and_a_k_longer_than_the_list():
    # A: labels (1, 0, 1): item 2 (t = 1) has one item above it.  B, C: all positive.
    expected = (softplus(-1.0) + softplus(-1.0) + softplus(-0.0) + softplus(-0.5) + softplus(0.5) + softplus(-2.0)) / 6
    assert _call(pointwise_top_k, k=2) == pytest.approx(expected, rel=1e-6)
    everything = (softplus(-1.0) + softplus(1.0) + softplus(0.0) + softplus(-0.5) + softplus(0.5) + softplus(-2.0)) / 6
    assert _call(pointwise_top_k, k=5) == pytest.approx(everything, rel=1e-6)


def test_pairwise_bpr_over_the_pairs_the_teacher_orders():
    # A: (0 over 1, gap 2), (0 over 2, gap 1), (2 over 1, gap 1); student gaps 2, 1, 1.  B: a tie, no pair.
    # C: one item, no pair.  Padding makes none.
    assert _call(pairwise_bpr) == pytest.approx((softplus(-2.0) + 2 * softplus(-1.0)) / 3, rel=1e-6)
    # A margin keeps the pairs the teacher orders by more than it: only (0, 1).
    assert _call(pairwise_bpr, margin=1.0) == pytest.approx(softplus(-2.0), rel=1e-6)
    assert _call(pairwise_bpr, margin=2.0) == 0.0  # no pair left: 0, not NaN


def test_listwise_softmax_cross_entropy_per_list():
    p_a = np.exp([2.0, 0.0, 1.0]) / np.exp([2.0, 0.0, 1.0]).sum()
    log_q_a = np.array([1.0, -1.0, 0.0]) - math.log(math.exp(1.0) + math.exp(-1.0) + 1.0)
    ce_a = -float(p_a @ log_q_a)
    # B: teacher (1/2, 1/2); the student's logits (0.5, -0.5) have mean 0, so CE = log(e^0.5 + e^-0.5).
    ce_b = math.log(2 * math.cosh(0.5))
    assert ce_b == pytest.approx(0.8132617, rel=1e-6)  # log(2.2552519)
    # C: one item, p = q = 1: 0.  The mean over the three lists.
    assert _call(listwise_softmax) == pytest.approx((ce_a + ce_b) / 3, rel=1e-6)


def test_listwise_temperature_softens_both_and_scales_by_its_square():
    tau = 2.0
    p_a = np.exp(np.array([2.0, 0.0, 1.0]) / tau)
    p_a /= p_a.sum()
    s_a = np.array([1.0, -1.0, 0.0]) / tau
    ce_a = -float(p_a @ (s_a - math.log(np.exp(s_a).sum())))
    ce_b = math.log(2 * math.cosh(0.25))
    assert _call(listwise_softmax, temperature=tau) == pytest.approx(tau**2 * (ce_a + ce_b) / 3, rel=1e-6)


@pytest.mark.parametrize("loss, kwargs", [(pointwise_top_k, {"k": 1}), (pairwise_bpr, {}),
                                          (listwise_softmax, {"temperature": 2.0})])
def test_padding_never_counts_and_the_teacher_gets_no_gradient(loss, kwargs):
    teacher, student = tf.Variable(TEACHER), tf.Variable(STUDENT)
    with tf.GradientTape(persistent=True) as tape:
        value = loss(teacher * 1.0, student * 1.0, tf.constant(MASK), **kwargs)
    assert tape.gradient(value, teacher) is None
    grad = tape.gradient(value, student).numpy()
    assert np.all(grad[~MASK] == 0) and np.any(grad[MASK] != 0)
    other = np.where(MASK, STUDENT, -123.0).astype(np.float32)  # any padding values: the same loss
    other_teacher = np.where(MASK, TEACHER, 55.0).astype(np.float32)
    assert float(loss(tf.constant(other_teacher), tf.constant(other), tf.constant(MASK), **kwargs)) == \
        pytest.approx(float(value), rel=1e-6)


@pytest.mark.parametrize("loss, kwargs", [(pointwise_top_k, {"k": 1}), (pairwise_bpr, {}), (listwise_softmax, {})])
def test_lists_of_one_item_and_all_tied_lists(loss, kwargs):
    single = tf.constant([[3.0], [-1.0]]), tf.constant([[0.5], [2.0]]), tf.constant([[True], [True]])
    tied = tf.constant([[1.0, 1.0, 1.0]]), tf.constant([[0.0, 1.0, -1.0]]), tf.constant([[True, True, True]])
    if loss is pointwise_top_k:  # every item positive: the mean of softplus(-s)
        assert float(loss(*single, **kwargs)) == pytest.approx((softplus(-0.5) + softplus(-2.0)) / 2, rel=1e-6)
        assert float(loss(*tied, **kwargs)) == pytest.approx(
            (softplus(0.0) + softplus(-1.0) + softplus(1.0)) / 3, rel=1e-6)
    elif loss is pairwise_bpr:  # no pair at all
        assert float(loss(*single)) == 0.0 and float(loss(*tied)) == 0.0
    else:  # one item: p = q = 1; a uniform teacher: log-sum-exp of the student's logits minus their mean
        assert float(loss(*single)) == pytest.approx(0.0, abs=1e-7)
        assert float(loss(*tied)) == pytest.approx(math.log(1 + math.e + 1 / math.e), rel=1e-6)


def test_to_lists_groups_a_flat_batch_by_id_in_order_of_first_row():
    ids = tf.constant([7, 3, 7, 9, 3, 7], tf.int64)
    scores, mask = to_lists(ids, tf.constant([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    np.testing.assert_allclose(scores.numpy(), [[0.1, 0.3, 0.6], [0.2, 0.5, 0.0], [0.4, 0.0, 0.0]])
    np.testing.assert_array_equal(mask.numpy(), [[True, True, True], [True, True, False], [True, False, False]])
    words, _ = to_lists(tf.constant(["r1", "r2", "r1"]), tf.constant([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(words.numpy(), [[1.0, 3.0], [2.0, 0.0]])


def test_a_flat_batch_through_to_lists_gives_the_padded_batchs_loss():
    # The rows of lists A, B, C interleaved, with group ids.
    rows = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]  # (list, item)
    ids = tf.constant([g for g, _ in rows])
    teacher, mask = to_lists(ids, tf.constant([TEACHER[g, i] for g, i in rows]))
    student, _ = to_lists(ids, tf.constant([STUDENT[g, i] for g, i in rows]))
    for loss in (lambda t, s, m: pointwise_top_k(t, s, m, 2), pairwise_bpr, listwise_softmax):
        assert float(loss(teacher, student, mask)) == pytest.approx(_call(loss), rel=1e-6)


def test_bad_arguments_are_refused():
    t, s, m = tf.constant(TEACHER), tf.constant(STUDENT), tf.constant(MASK)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pointwise_top_k(t, s, m, 0)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        pairwise_bpr(t, s, m, margin=-1.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        listwise_softmax(t, s, m, temperature=0.0)
    with pytest.raises(ValueError, match=r"\[lists, items\] scores and mask of one shape"):
        pairwise_bpr(t, s[:, :2], m)
