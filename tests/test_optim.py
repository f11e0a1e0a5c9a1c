"""Adagrad with the linear warm-up of Section 5.1."""
from __future__ import annotations

import pytest

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras, tf
from pfd_tf.config import TrainConfig
from pfd_tf.optim import LinearWarmup, make_optimizer


def test_warmup_rises_linearly_then_stays_at_the_peak():
    schedule = LinearWarmup(peak=0.01, warmup_steps=4)
    values = [float(schedule(tf.constant(step))) for step in range(7)]
    assert values == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01, 0.01])
    assert float(LinearWarmup(0.02, 0)(tf.constant(0))) == pytest.approx(0.02)
    assert LinearWarmup.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_adagrad_step_uses_the_scheduled_rate():
    optimizer = make_optimizer(TrainConfig(learning_rate=0.1, warmup_steps=10, initial_accumulator=0.1))
    assert isinstance(optimizer, keras.optimizers.Adagrad)
    var = tf.Variable([1.0])
    optimizer.apply_gradients([(tf.constant([0.5]), var)])
    # Adagrad: acc = 0.1 + 0.5^2; var -= lr(0) * g / sqrt(acc), lr(0) = 0.1 * 1/10.
    expected = 1.0 - 0.01 * 0.5 / (0.35**0.5 + 1e-7)
    assert float(var[0]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "start,steps,log_every,plan",
    [
        (0, 300, 100, [(0, 3, 100)]),
        (0, 683, 100, [(0, 6, 100), (6, 7, 83)]),  # a prime step count: one short last epoch
        (200, 683, 100, [(2, 6, 100), (6, 7, 83)]),  # resumed from the checkpoint at step 200
        (600, 683, 100, [(6, 7, 83)]),
        (683, 683, 100, []),
        (0, 50, 100, [(0, 1, 50)]),
    ],
)
def test_fit_plan_trains_exactly_the_configured_steps(start, steps, log_every, plan):
    from pfd_tf.trainer import fit_plan

    assert fit_plan(start, steps, log_every) == plan
    assert start + sum((e - i) * n for i, e, n in plan) == max(steps, start)
