"""The loss terms of Eq. (5)/(6) against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from pfd_tf.distill.losses import distillation_loss, logloss


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_logloss_is_eq6():
    labels, logits = [1.0, 0.0, 1.0], [2.0, -1.0, -0.5]
    expected = np.mean([math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(-1.0)), math.log(1 + math.exp(0.5))])
    assert float(logloss(tf.constant(labels), tf.constant(logits))) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_distillation_loss_is_cross_entropy_against_soft_labels(temperature):
    teacher, student = [3.0, -2.0], [0.5, 1.0]
    expected = []
    for zt, zs in zip(teacher, student):
        p = _sigmoid(zt / temperature)
        q = _sigmoid(zs / temperature)
        expected.append(-(p * math.log(q) + (1 - p) * math.log(1 - q)))
    value = distillation_loss(tf.constant(teacher), tf.constant(student), temperature)
    assert float(value) == pytest.approx(temperature**2 * np.mean(expected), rel=1e-6)


def test_distillation_loss_sends_no_gradient_to_the_teacher_logits():
    teacher, student = tf.Variable([1.0, -1.0]), tf.Variable([0.2, 0.3])
    with tf.GradientTape() as tape:
        value = distillation_loss(teacher, student)
    d_teacher, d_student = tape.gradient(value, [teacher, student])
    assert d_teacher is None
    # d/dz_s CE(p, sigmoid(z_s)) = sigmoid(z_s) - p, averaged over the batch.
    expected = [(_sigmoid(0.2) - _sigmoid(1.0)) / 2, (_sigmoid(0.3) - _sigmoid(-1.0)) / 2]
    np.testing.assert_allclose(d_student.numpy(), expected, rtol=1e-5)
