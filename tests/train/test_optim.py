"""The optimizers (Adagrad, Adam) with the linear warm-up of Section 5.1."""
from __future__ import annotations

import numpy as np
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


def test_adam_has_the_configured_betas_epsilon_and_warmup():
    from pfd_tf import config as config_lib
    from pfd_tf.config import Optimizer

    train = TrainConfig(optimizer=Optimizer.ADAM, learning_rate=0.1, warmup_steps=4,
                        adam_beta_1=0.5, adam_beta_2=0.75, adam_epsilon=0.01)
    optimizer = make_optimizer(train)
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert type(optimizer).__module__.startswith("tf_keras")  # Keras 2's, whose slots shard under PS
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.5, 0.75, 0.01)
    assert isinstance(optimizer._learning_rate, LinearWarmup)
    assert optimizer._learning_rate.get_config() == {"peak": 0.1, "warmup_steps": 4}

    # Two steps against Adam's update written out: m, v moving averages, bias-corrected step size,
    # at the warm-up's rate for steps 0 and 1 (0.1 * 1/4, 0.1 * 2/4).
    var = tf.Variable([1.0, -2.0])
    m = v = np.zeros(2)
    expected = np.array([1.0, -2.0])
    for step, grad in enumerate([np.array([0.5, -1.0]), np.array([0.2, 0.3])]):
        optimizer.apply_gradients([(tf.constant(grad, tf.float32), var)])
        m = 0.5 * m + 0.5 * grad
        v = 0.75 * v + 0.25 * grad**2
        t = step + 1
        alpha = 0.1 * (step + 1) / 4 * np.sqrt(1 - 0.75**t) / (1 - 0.5**t)
        expected = expected - alpha * m / (np.sqrt(v) + 0.01)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5)

    # The YAML spelling picks it too.
    raw = {"data": {"train_files": ["t.csv"], "eval_files": ["e.csv"], "label": "y"},
           "features": [{"name": "u", "kind": "categorical", "hash_buckets": 4, "dim": 2}],
           "distill": {"mode": "baseline"}, "train": {"optimizer": "adam", "adam_beta_1": 0.8, "steps": 10}}
    assert make_optimizer(config_lib.from_dict(raw).train).beta_1 == 0.8
    raw["train"]["optimizer"] = "sgd"
    with pytest.raises(config_lib.ConfigError, match=r"train\.optimizer: unknown value 'sgd'"):
        config_lib.from_dict(raw)


def test_adagrad_starts_from_the_configured_accumulator():
    optimizer = make_optimizer(TrainConfig(learning_rate=0.2, warmup_steps=0, initial_accumulator=0.5))
    assert isinstance(optimizer, keras.optimizers.Adagrad)
    assert optimizer.initial_accumulator_value == 0.5
    var = tf.Variable([1.0])
    for _ in range(2):
        optimizer.apply_gradients([(tf.constant([1.0]), var)])
    # acc = 0.5 + 1, then 0.5 + 2; no warm-up: the peak rate from step 0.
    expected = 1.0 - 0.2 / np.sqrt(1.5 + 1e-7) - 0.2 / np.sqrt(2.5 + 1e-7)
    assert float(var[0]) == pytest.approx(expected, rel=1e-5)
