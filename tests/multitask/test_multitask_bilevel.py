"""Algorithm 1 of CrossDistil inside one `fit` step: Theta by L^Model, then Omega = {P, Q} by L^Cal (Eq. (9)),
each by its own optimizer over its own variable group (`split_bilevel_variables`).

The tiny model here demonstrates the wiring on a PLE backbone; the
Distiller's own (`distill.crossdistil`, `pfd_tf.distill.crossdistil_part`) is
tested in tests/test_crossdistil_distiller.py.  Here: a PLE backbone with the two tasks' towers and the
augmented tasks' towers (on the same tasks' representations), two Platt
layers, and a `train_step` that updates the groups in turn.
"""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.multitask.calibration import PlattScaling, calibration_loss, split_bilevel_variables
from pfd_tf.multitask.crossdistil import CrossDistilParams, TaskParams, crossdistil_losses
from pfd_tf.multitask.ple import PLE
from pfd_tf.multitask.quadruplets import sample_quadruplets, step_seed
from pfd_tf.multitask.towers import MultiTaskNetwork, TaskTowers

TASKS = ("like", "buy")


class TinyCrossDistil(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        towers = TaskTowers(TASKS + ("like_aug", "buy_aug"), (3,), normalization="none",
                            sources={"like_aug": "like", "buy_aug": "buy"})
        self.network = MultiTaskNetwork(PLE(TASKS, levels=1, expert_units=(4,), normalization="none"), towers)
        self.calibration = {task: PlattScaling(name=f"platt_{task}") for task in TASKS}
        self.params = CrossDistilParams(TASKS, {task: TaskParams(alpha=0.5, margin=0.5) for task in TASKS})

    def compile(self, theta_optimizer, omega_optimizer):
        super().compile(optimizer=theta_optimizer)
        self.omega_optimizer = omega_optimizer

    def step_losses(self, x, labels, step, training=False):
        logits = self.network(x, training=training)
        quadruplets = sample_quadruplets(labels["like"], labels["buy"], step_seed(0, step))
        return crossdistil_losses(labels, {t: logits[t] for t in TASKS}, {t: logits[f"{t}_aug"] for t in TASKS},
                                  self.calibration, quadruplets, self.params)

    def calibration_loss(self, x, labels):
        """L^Cal (Eq. (9)) at the current Theta (Algorithm 1, line 13: after Theta's update)."""
        logits = self.network(x, training=False)
        return tf.add_n([calibration_loss(labels[t], logits[f"{t}_aug"], self.calibration[t]) for t in TASKS])

    def train_step(self, data):
        x, labels = data
        step = self.optimizer.iterations
        with tf.GradientTape() as tape:
            losses = self.step_losses(x, labels, step, training=True)
        groups = split_bilevel_variables(self.trainable_variables, self.calibration)
        self.optimizer.apply_gradients(zip(tape.gradient(losses["loss_model"], groups.theta), groups.theta))
        with tf.GradientTape() as tape:
            calibration = self.calibration_loss(x, labels)
        self.omega_optimizer.apply_gradients(zip(tape.gradient(calibration, groups.omega), groups.omega))
        return {"loss_model": losses["loss_model"], "loss_calibration": calibration}


def _data(rows=16):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    like = np.array([1, 1, 0, 0] * (rows // 4), np.float32)
    buy = np.array([1, 0, 1, 0] * (rows // 4), np.float32)
    return x, {"like": like, "buy": buy}


def _model():
    x, labels = _data()
    model = TinyCrossDistil()
    model.step_losses(tf.constant(x), {k: tf.constant(v) for k, v in labels.items()}, 0)
    return model, x, labels


def _fit_one_step(model, x, labels, theta_rate, omega_rate, run_eagerly=False):
    """One `fit` step over the 16 rows; traced as `fit` runs it (under ParameterServerStrategy too) unless
    `run_eagerly` (the same Python, without the seconds of tracing)."""
    model.compile(keras.optimizers.SGD(theta_rate), keras.optimizers.SGD(omega_rate))
    model.run_eagerly = run_eagerly
    model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(len(x)), epochs=1, verbose=0)


def test_the_calibration_loss_never_reaches_theta_and_the_model_loss_never_reaches_omega():
    model, x, labels = _model()
    groups = split_bilevel_variables(model.trainable_variables, model.calibration)
    assert len(groups.omega) == 4 and len(groups.theta) == len(model.trainable_variables) - 4
    with tf.GradientTape(persistent=True) as tape:
        losses = model.step_losses(tf.constant(x), labels, 0, training=True)
    assert all(g is None for g in tape.gradient(losses["loss_calibration"], groups.theta))
    assert all(g is None for g in tape.gradient(losses["loss_model"], groups.omega))
    assert all(g is not None for g in tape.gradient(losses["loss_model"], groups.theta))
    assert all(g is not None for g in tape.gradient(losses["loss_calibration"], groups.omega))


def test_one_fit_step_updates_theta_by_the_model_loss_then_omega_by_the_calibration_loss():
    model, x, labels = _model()
    groups = split_bilevel_variables(model.trainable_variables, model.calibration)
    theta0 = [v.numpy() for v in groups.theta]
    omega0 = [v.numpy() for v in groups.omega]
    with tf.GradientTape() as tape:
        model_loss = model.step_losses(tf.constant(x), labels, 0, training=True)["loss_model"]
    theta_gradients = [g.numpy() for g in tape.gradient(model_loss, groups.theta)]

    _fit_one_step(model, x, labels, theta_rate=0.1, omega_rate=0.5)

    for v, before, g in zip(groups.theta, theta0, theta_gradients):
        np.testing.assert_allclose(v.numpy(), before - 0.1 * g, rtol=1e-5, atol=1e-6, err_msg=v.name)
    omega1 = [v.numpy() for v in groups.omega]
    # Omega's step used L^Cal at the *updated* Theta and the old Omega.
    for v, before in zip(groups.omega, omega0):
        v.assign(before)
    with tf.GradientTape() as tape:
        calibration = model.calibration_loss(tf.constant(x), labels)
    for after, before, g in zip(omega1, omega0, tape.gradient(calibration, groups.omega)):
        np.testing.assert_allclose(after, before - 0.5 * g.numpy(), rtol=1e-5, atol=1e-6)
        assert after != before


@pytest.mark.parametrize("frozen", ["theta", "omega"])
def test_a_frozen_groups_optimizer_leaves_it_exactly_as_it_was(frozen):
    """With one group's rate at 0 the other still moves: no update reaches a group through the other's loss."""
    model, x, labels = _model()
    groups = split_bilevel_variables(model.trainable_variables, model.calibration)
    before = {"theta": [v.numpy() for v in groups.theta], "omega": [v.numpy() for v in groups.omega]}
    _fit_one_step(model, x, labels, theta_rate=0.0 if frozen == "theta" else 0.3,
                  omega_rate=0.0 if frozen == "omega" else 0.3, run_eagerly=True)
    after = {"theta": [v.numpy() for v in groups.theta], "omega": [v.numpy() for v in groups.omega]}
    moving = "omega" if frozen == "theta" else "theta"
    assert all(np.array_equal(a, b) for a, b in zip(after[frozen], before[frozen]))
    assert any(not np.array_equal(a, b) for a, b in zip(after[moving], before[moving]))


def test_the_split_refuses_calibration_layers_the_model_does_not_hold():
    model, *_ = _model()
    stray = PlattScaling()
    with pytest.raises(ValueError, match="not built yet"):
        split_bilevel_variables(model.trainable_variables, [stray])
    stray(tf.zeros([1]))
    with pytest.raises(ValueError, match="2 calibration variable"):
        split_bilevel_variables(model.trainable_variables, {"like": stray})
