"""CrossDistil's losses against hand values: quadruplet sampling (Eq. (2)) and the augmented ranking loss
(Eq. (4)), Platt scaling (Eq. (8)-(9)), distillation (Eq. (5)-(7)) and error correction (Eq. (10))."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf.multitask.calibration import PlattScaling, calibration_loss
from pfd_tf.multitask.crossdistil import (
    CrossDistilParams,
    TaskParams,
    cross_task_distillation_loss,
    crossdistil_losses,
    error_correct,
    soft_logits,
    student_loss,
)
from pfd_tf.multitask.quadruplets import (
    FIRST,
    KEYS,
    SECOND,
    augmented_ranking_loss,
    sample_quadruplets,
    step_seed,
)


def softplus(x):
    return math.log1p(math.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


MEMBERS = {"++": lambda a, b: a & b, "+-": lambda a, b: a & ~b, "-+": lambda a, b: ~a & b,
           "--": lambda a, b: ~a & ~b, "+.": lambda a, b: a, "-.": lambda a, b: ~a,
           ".+": lambda a, b: b, ".-": lambda a, b: ~b}


# --------------------------------------------------------------------------
# Sampling (Eq. (2), Algorithm 1 lines 4-5)
# --------------------------------------------------------------------------
def test_every_draw_comes_from_its_set_and_the_draws_are_a_function_of_seed_and_step():
    rng = np.random.default_rng(3)
    a, b = rng.random(40) < 0.4, rng.random(40) < 0.3
    quads = sample_quadruplets(a.astype(np.float32), b.astype(np.int64), step_seed(7, 5))
    for key in KEYS:
        rows = quads.indices[key].numpy()
        assert rows.shape == (40,)  # one quadruplet per row of the batch by default
        assert MEMBERS[key](a, b)[rows].all(), key
        assert float(quads.present[key]) == 1.0
    again = sample_quadruplets(a, b, step_seed(7, 5), samples=40)
    other_step = sample_quadruplets(a, b, step_seed(7, 6))
    assert all(np.array_equal(quads.indices[k].numpy(), again.indices[k].numpy()) for k in KEYS)
    assert not all(np.array_equal(quads.indices[k].numpy(), other_step.indices[k].numpy()) for k in KEYS)


def test_draws_are_uniform_with_replacement_within_a_set():
    a = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)  # D^{+.} = rows 0, 1, 2
    b = np.zeros(8, bool)
    rows = sample_quadruplets(a, b, step_seed(0, 0), samples=30_000).indices["+."].numpy()
    shares = np.bincount(rows, minlength=8)[:3] / rows.size
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.015)  # 5 standard errors


def test_a_missing_combination_is_flagged_absent_and_an_empty_batch_draws_safely():
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([0, 0, 1, 0], bool)  # no ++
    quads = sample_quadruplets(a, b, step_seed(1, 2))
    assert {k: float(quads.present[k]) for k in KEYS} == {"++": 0.0, "+-": 1.0, "-+": 1.0, "--": 1.0,
                                                          "+.": 1.0, "-.": 1.0, ".+": 1.0, ".-": 1.0}
    empty = sample_quadruplets(np.zeros(0, bool), np.zeros(0, bool), step_seed(1, 2))
    assert all(float(empty.present[k]) == 0.0 for k in KEYS)
    assert float(augmented_ranking_loss(tf.zeros([0]), empty)) == 0.0


# --------------------------------------------------------------------------
# The augmented ranking loss, Eq. (4)
# --------------------------------------------------------------------------
# One row per combination, in the order ++, +-, -+, --: each set of one row always draws that row.
A_ROWS, B_ROWS = np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)


def test_augmented_loss_of_task_a_equals_the_hand_value():
    logits = tf.constant([2.0, 2.0, -1.0, -1.0])  # r++ = r+- = 2, r-+ = r-- = -1
    quads = sample_quadruplets(A_ROWS, B_ROWS, step_seed(0, 0))
    # beta1 (-ln s(r++ - r+-) = ln 2) + beta2 (ln 2) + the (+., -.) pair: every draw has r+. = 2, r-. = -1.
    expected = 0.5 * math.log(2) + 2.0 * math.log(2) + softplus(-3.0)
    assert float(augmented_ranking_loss(logits, quads, FIRST, beta1=0.5, beta2=2.0)) == pytest.approx(expected,
                                                                                                      rel=1e-6)


def test_augmented_loss_of_task_b_orders_by_bs_label_first():
    logits = tf.constant([3.0, 0.0, 1.0, 0.0])  # r++ = 3, r+- = 0, r-+ = 1, r-- = 0
    quads = sample_quadruplets(A_ROWS, B_ROWS, step_seed(0, 0))
    # B+: beta1 -ln s(r++ - r-+) = softplus(-2); beta2 -ln s(r+- - r--) = ln 2;
    # the (.+, .-) pair draws r.+ from {3, 1}, r.- from {0, 0}: mean over the draws.
    rows_plus = quads.indices[".+"].numpy()
    pair = np.mean([softplus(0.0 - [3.0, 0.0, 1.0, 0.0][i]) for i in rows_plus])
    expected = 1.5 * softplus(-2.0) + 0.25 * math.log(2) + pair
    assert float(augmented_ranking_loss(logits, quads, SECOND, 1.5, 0.25)) == pytest.approx(expected, rel=1e-6)


def test_augmented_loss_equals_numpy_over_the_drawn_quadruplets():
    rng = np.random.default_rng(11)
    a, b = rng.random(64) < 0.5, rng.random(64) < 0.4
    r = rng.normal(size=64).astype(np.float32)
    quads = sample_quadruplets(a, b, step_seed(3, 9), samples=50)
    idx = {k: quads.indices[k].numpy() for k in KEYS}

    def pair(hi, lo):
        return np.mean(np.log1p(np.exp(r[idx[lo]] - r[idx[hi]])))

    expected_a = 0.7 * pair("++", "+-") + 1.3 * pair("-+", "--") + pair("+.", "-.")
    expected_b = 0.7 * pair("++", "-+") + 1.3 * pair("+-", "--") + pair(".+", ".-")
    assert float(augmented_ranking_loss(tf.constant(r), quads, FIRST, 0.7, 1.3)) == pytest.approx(expected_a, rel=1e-5)
    assert float(augmented_ranking_loss(tf.constant(r), quads, SECOND, 0.7, 1.3)) == pytest.approx(expected_b, rel=1e-5)


def test_a_batch_without_a_combination_drops_exactly_the_terms_that_need_it():
    a = np.array([1, 0, 0], bool)
    b = np.array([0, 1, 0], bool)  # +-, -+, --: no ++
    logits = tf.Variable([1.0, 0.5, -0.5])
    quads = sample_quadruplets(a, b, step_seed(0, 4))
    with tf.GradientTape() as tape:
        loss_a = augmented_ranking_loss(logits, quads, FIRST, beta1=5.0, beta2=1.0)
    # beta1's pair needs ++: gone.  beta2: -ln s(r-+ - r--) = softplus(-1).  (+., -.): r+. = 1, r-. from {.5, -.5}.
    rows = quads.indices["-."].numpy()
    pair = np.mean([softplus([1.0, 0.5, -0.5][i] - 1.0) for i in rows])
    assert float(loss_a) == pytest.approx(softplus(-1.0) + pair, rel=1e-6)
    assert np.isfinite(tape.gradient(loss_a, logits).numpy()).all()
    # Task B: beta1 (++ vs -+) gone; beta2 (+- vs --); (.+, .-) present.
    loss_b = augmented_ranking_loss(logits, quads, SECOND, beta1=5.0, beta2=1.0)
    rows = quads.indices[".-"].numpy()
    pair_b = np.mean([softplus([1.0, 0.5, -0.5][i] - 0.5) for i in rows])
    assert float(loss_b) == pytest.approx(softplus(-0.5 - 1.0) + pair_b, rel=1e-6)
    # One task all negative: only the pairs within the other task's label remain, then nothing.
    only_neg = sample_quadruplets(np.zeros(3, bool), np.zeros(3, bool), step_seed(0, 0))
    assert float(augmented_ranking_loss(logits, only_neg, FIRST)) == 0.0


def test_an_unknown_role_is_an_error():
    with pytest.raises(ValueError, match="role must be 'A' or 'B'"):
        augmented_ranking_loss(tf.zeros([4]), sample_quadruplets(A_ROWS, B_ROWS, step_seed(0, 0)), "C")


# --------------------------------------------------------------------------
# Calibration, Eq. (8)-(9)
# --------------------------------------------------------------------------
def test_platt_scaling_starts_as_the_identity_and_is_p_r_plus_q():
    platt = PlattScaling()
    r = tf.constant([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(platt(r).numpy(), r.numpy())
    platt.set_weights([np.float32(2.0), np.float32(-1.0)])
    np.testing.assert_allclose(platt(r).numpy(), [-5.0, -1.0, 5.0])


def test_calibration_loss_is_the_log_loss_of_the_standard_sigmoid_and_never_reaches_the_teacher():
    platt = PlattScaling()
    platt(tf.zeros([1]))
    platt.set_weights([np.float32(0.5), np.float32(1.0)])
    teacher = tf.Variable([2.0, -4.0])
    with tf.GradientTape(persistent=True) as tape:
        loss = calibration_loss(tf.constant([1.0, 0.0]), teacher, platt)
    # r~ = 0.5 r + 1 = [2, -1]; CE = (-ln s(2) - ln(1 - s(-1))) / 2 = (softplus(-2) + softplus(-1)) / 2.
    # (The paper's printed 1 / (1 + exp r~) would give the reversed (softplus(2) + softplus(1)) / 2.)
    assert float(loss) == pytest.approx((softplus(-2.0) + softplus(-1.0)) / 2, rel=1e-6)
    assert tape.gradient(loss, teacher) is None
    grad_p, grad_q = tape.gradient(loss, [platt.p, platt.q])
    # d/dq = mean(s(r~) - y) = (s(2) - 1 + s(-1)) / 2; d/dp = mean((s(r~) - y) r).
    assert float(grad_q) == pytest.approx((sigmoid(2.0) - 1.0 + sigmoid(-1.0)) / 2, rel=1e-5)
    assert float(grad_p) == pytest.approx(((sigmoid(2.0) - 1.0) * 2.0 + sigmoid(-1.0) * -4.0) / 2, rel=1e-5)


# --------------------------------------------------------------------------
# Distillation, Eq. (5)-(7), and error correction, Eq. (10)
# --------------------------------------------------------------------------
def test_distillation_loss_is_eq6_without_a_temperature_squared_factor():
    assert float(cross_task_distillation_loss(tf.constant([0.0]), tf.constant([0.0]), 3.0)) == pytest.approx(
        math.log(2), rel=1e-6)
    p, q = sigmoid(1.0), sigmoid(2.0)  # teacher 2 / tau, student 4 / tau with tau = 2
    expected = -(p * math.log(q) + (1 - p) * math.log(1 - q))
    assert float(cross_task_distillation_loss(tf.constant([2.0]), tf.constant([4.0]), 2.0)) == pytest.approx(
        expected, rel=1e-6)


def test_student_loss_is_eq7():
    y, student, teacher = tf.constant([1.0, 0.0]), tf.constant([0.5, 0.5]), tf.constant([1.0, -2.0])
    hard = (softplus(-0.5) + softplus(0.5)) / 2
    soft = np.mean([-(sigmoid(t) * math.log(sigmoid(0.5)) + (1 - sigmoid(t)) * math.log(1 - sigmoid(0.5)))
                    for t in (1.0, -2.0)])
    assert float(student_loss(y, student, teacher, alpha=0.3)) == pytest.approx(0.7 * hard + 0.3 * soft, rel=1e-6)


def test_error_correction_clamps_towards_the_labels_side_by_the_margin():
    labels = tf.constant([1, 1, 0, 0])
    teacher = tf.Variable([2.0, -1.0, -3.0, 0.5])
    with tf.GradientTape() as tape:
        corrected = error_correct(teacher, labels, margin=1.0)
    # y = 1: max(r, m): 2 stays, -1 -> 1.  y = 0: -max(-r, m) = min(r, -m): -3 stays, 0.5 -> -1.
    np.testing.assert_allclose(corrected.numpy(), [2.0, 1.0, -3.0, -1.0])
    assert tape.gradient(corrected, teacher) is None
    # A very negative margin is no correction at all (Section 4.6).
    np.testing.assert_allclose(error_correct(teacher, labels, -10.0).numpy(), teacher.numpy())
    # A negative margin corrects only the confidently wrong: y = 1 at r = -3 -> -1.
    np.testing.assert_allclose(error_correct(tf.constant([-3.0]), tf.constant([1]), -1.0).numpy(), [-1.0])


def test_soft_logits_calibrate_then_correct():
    platt = PlattScaling()
    platt(tf.zeros([1]))
    platt.set_weights([np.float32(2.0), np.float32(0.5)])
    r = tf.constant([-1.0, 1.0])
    labels = tf.constant([1, 0])
    # r~ = [-1.5, 2.5]; corrected with m = 1: y = 1 -> max(-1.5, 1) = 1; y = 0 -> min(2.5, -1) = -1.
    np.testing.assert_allclose(soft_logits(r, labels, platt, 1.0).numpy(), [1.0, -1.0])
    np.testing.assert_allclose(soft_logits(r, labels, platt, None).numpy(), [-1.5, 2.5])
    np.testing.assert_allclose(soft_logits(r, labels, None, None).numpy(), [-1.0, 1.0])


# --------------------------------------------------------------------------
# One step's losses
# --------------------------------------------------------------------------
def _step(calibrate=True, correct=True, alpha=0.4):
    labels = {"like": tf.constant([1.0, 1.0, 0.0, 0.0]), "buy": tf.constant([1.0, 0.0, 1.0, 0.0])}
    student = {"like": tf.Variable([0.3, -0.2, 0.1, -1.0]), "buy": tf.Variable([1.0, -1.0, 0.0, -2.0])}
    teacher = {"like": tf.Variable([2.0, 1.0, -0.5, -2.0]), "buy": tf.Variable([1.5, -0.5, 0.5, -1.5])}
    platt = {"like": PlattScaling(), "buy": PlattScaling()}
    params = CrossDistilParams(("like", "buy"), {"like": TaskParams(0.5, 2.0, alpha, 1.0),
                                                "buy": TaskParams(1.0, 1.0, alpha, 0.5)},
                               temperature=2.0, ranking_weight=0.3, calibrate=calibrate, correct=correct)
    quads = sample_quadruplets(labels["like"], labels["buy"], step_seed(0, 0))
    with tf.GradientTape(persistent=True) as tape:
        losses = crossdistil_losses(labels, {k: v * 1.0 for k, v in student.items()},
                                    {k: v * 1.0 for k, v in teacher.items()}, platt, quads, params)
    return losses, tape, student, teacher, platt, labels, quads, params


def test_one_steps_losses_add_up_as_algorithm_1_says():
    losses, _, student, teacher, platt, labels, quads, params = _step()
    model = 0.0
    for task, role in (("like", FIRST), ("buy", SECOND)):
        p = params.of(task)
        ranking = augmented_ranking_loss(teacher[task], quads, role, p.beta1, p.beta2)
        soft = error_correct(platt[task](teacher[task]), labels[task], p.margin)
        assert float(losses[f"loss_{task}_ranking"]) == pytest.approx(float(ranking), rel=1e-6)
        assert float(losses[f"loss_{task}_distill"]) == pytest.approx(
            float(cross_task_distillation_loss(soft, student[task], 2.0)), rel=1e-6)
        assert float(losses[f"loss_{task}_student"]) == pytest.approx(
            float(student_loss(labels[task], student[task], soft, 0.4, 2.0)), rel=1e-6)
        model += 0.3 * float(ranking) + float(losses[f"loss_{task}_student"])
    assert float(losses["loss_model"]) == pytest.approx(model, rel=1e-6)
    assert float(losses["loss_calibration"]) == pytest.approx(
        float(losses["loss_like_calibration"]) + float(losses["loss_buy_calibration"]), rel=1e-6)


def test_the_soft_label_moves_the_student_only_and_the_calibration_loss_p_and_q_only():
    losses, tape, student, teacher, platt, *_ = _step()
    platt_vars = [v for layer in platt.values() for v in layer.trainable_variables]
    for task in ("like", "buy"):
        assert tape.gradient(losses[f"loss_{task}_distill"], teacher[task]) is None
        assert tape.gradient(losses[f"loss_{task}_distill"], platt[task].trainable_variables) == [None, None]
        assert tape.gradient(losses[f"loss_{task}_distill"], student[task]) is not None
        assert tape.gradient(losses[f"loss_{task}_ranking"], teacher[task]) is not None
    assert all(g is None for g in tape.gradient(losses["loss_model"], platt_vars))
    assert all(tape.gradient(losses["loss_calibration"], v) is None for v in (*student.values(), *teacher.values()))
    assert all(g is not None for g in tape.gradient(losses["loss_calibration"], platt_vars))


def test_the_ablation_flags_change_the_soft_label_only():
    full, *_ = _step()
    no_correction, *_ = _step(correct=False)
    no_calibration, _, student, teacher, _, labels, _, _ = _step(calibrate=False, correct=False)
    # P = 1, Q = 0 at the start: without correction, calibrated and raw soft labels agree.
    assert float(no_calibration["loss_like_distill"]) == pytest.approx(float(no_correction["loss_like_distill"]))
    assert float(no_calibration["loss_like_distill"]) == pytest.approx(
        float(cross_task_distillation_loss(teacher["like"], student["like"], 2.0)), rel=1e-6)
    # The third row (like = 0, teacher -0.5 > -m = -1) is corrected: the distillation loss changes, nothing else.
    assert float(full["loss_like_distill"]) != pytest.approx(float(no_correction["loss_like_distill"]))
    for key in ("loss_like", "loss_like_ranking", "loss_calibration"):
        assert float(full[key]) == pytest.approx(float(no_correction[key]))
    assert float(no_calibration["loss_like"]) == pytest.approx(float(full["loss_like"]))


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        TaskParams(alpha=1.5)
    with pytest.raises(ValueError, match="beta1, beta2 must be >= 0"):
        TaskParams(beta2=-1.0)
    with pytest.raises(ValueError, match="two distinct tasks"):
        CrossDistilParams(("like", "like"))
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['click'\]"):
        CrossDistilParams(("like", "buy"), {"click": TaskParams()})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        CrossDistilParams(("like", "buy"), temperature=0.0)
