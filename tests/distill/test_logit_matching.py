"""KD-DAGFM's logit matching: mean((z_T - z_S)^2) against hand values, its gradient, its routing, its weights."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.distill import routing
from pfd_tf.distill.logit_matching import LogitMatching, authors_lambda, authors_scale
from pfd_tf.distill.build import build_distiller
from pfd_tf.models.build import dummy_ids
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.network import NetworkOutput

STUDENT = np.array([1.0, -2.0, 0.5], np.float32)
TEACHER = np.array([0.5, -1.0, 2.0], np.float32)
OTHER = np.array([1.0, -2.0, 1.5], np.float32)


def _out(logits) -> NetworkOutput:
    return NetworkOutput(logits, {"final": tf.reshape(logits, [-1, 1])})


def test_the_loss_is_the_mean_squared_logit_gap_and_its_gradient_reaches_the_student_only():
    student, teacher = tf.Variable(STUDENT), tf.Variable(TEACHER)
    term = LogitMatching()
    with tf.GradientTape(persistent=True) as tape:
        loss = term(_out(student * 1.0), teacher * 1.0, {"t": _out(teacher * 1.0)})
    # (0.5^2 + 1^2 + 1.5^2) / 3 = 3.5 / 3
    np.testing.assert_allclose(float(loss), 3.5 / 3, rtol=1e-6)
    # d/dz_S = 2 (z_S - z_T) / n = [1/3, -2/3, -1]
    np.testing.assert_allclose(tape.gradient(loss, student).numpy(), [1 / 3, -2 / 3, -1.0], rtol=1e-6)
    assert tape.gradient(loss, teacher) is None  # the teacher's logit is behind a stop-gradient


def test_a_named_teacher_is_matched_instead_of_the_soft_label():
    teachers = {"t": _out(tf.constant(TEACHER)), "u": _out(tf.constant(OTHER))}
    loss = LogitMatching(teacher="u")(_out(tf.constant(STUDENT)), tf.constant(TEACHER), teachers)
    np.testing.assert_allclose(float(loss), 1.0 / 3, rtol=1e-6)  # only the last row differs, by 1
    with pytest.raises(ValueError, match="logit matching names teacher 'v'; the teachers are t, u"):
        LogitMatching(teacher="v")(_out(tf.constant(STUDENT)), tf.constant(TEACHER), teachers)


def test_key_and_groups_follow_the_term_protocol():
    term = LogitMatching()
    assert term.key_for("student") == "loss_logit_matching"
    assert term.key_for("small") == "loss_logit_matching_small"
    assert term.groups() == routing.student_loss_groups("student")
    assert term.groups("small") == frozenset({"student/small", "shared", "students_shared"})


def test_the_authors_weights_in_the_trainers_form():
    # alpha L_CE + beta L_KD with the authors' alpha = 0.1, beta = 921.6
    assert authors_lambda() == pytest.approx(921.6 / 921.7) and authors_scale() == pytest.approx(921.7)
    ce, kd = 0.45, 0.002
    lam = authors_lambda()
    assert 0.1 * ce + 921.6 * kd == pytest.approx(authors_scale() * ((1 - lam) * ce + lam * kd))
    assert authors_lambda(1.0, 1.0) == 0.5


def test_on_a_distillers_networks_it_moves_the_student_and_shared_tables_never_the_teacher(tiny_config_path):
    dims = [f"features.{name}.dim=4" for name in ("device", "price", "tags", "dwell", "cart")]
    config = config_lib.load(tiny_config_path, dims + [
        "teachers=[{name: dcn, model: dcn_v2, features: all, cross_layers: 1, cross_rank: 2}]",
        "student.model=dagfm", "student.dagfm_layers=2"])
    distiller = build_distiller(config)
    ids = dummy_ids(config.features, batch=4)
    term = LogitMatching()
    with tf.GradientTape() as tape:
        bank = FeatureBank(ids)
        student = distiller.student.forward(ids, training=True, bank=bank)
        teacher = routing.detach(distiller.teachers["dcn"].forward(ids, training=True, bank=bank))
        loss = term(student, teacher.logits, {"dcn": teacher})
    groups = distiller.variable_groups()
    grads = dict(zip([v.ref() for vs in groups.values() for v in vs],
                     tape.gradient(loss, [v for vs in groups.values() for v in vs])))
    moved = {name for name, variables in groups.items()
             if any(grads[v.ref()] is not None and float(tf.reduce_max(tf.abs(tf.convert_to_tensor(grads[v.ref()]))))
                    > 0 for v in variables)}
    assert moved == {routing.STUDENT, routing.SHARED} and moved <= term.groups()
