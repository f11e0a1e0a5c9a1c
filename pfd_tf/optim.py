"""Adagrad with a linear learning-rate warm-up (Section 5.1 of the PFD paper).

"In the first one million steps, the learning rate is increased linearly to
the pre-defined value 0.01, which is then kept fixed."  The schedule is a
`LearningRateSchedule` object, as ParameterServerStrategy needs, and reads the
step from the optimizer, so it resumes where a restarted run left off.
"""
from __future__ import annotations

from pfd_tf._keras import keras, tf
from pfd_tf.config import TrainConfig


@keras.utils.register_keras_serializable(package="pfd_tf")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * min(1, (step + 1) / warmup_steps); constant peak if warmup_steps == 0."""

    def __init__(self, peak: float, warmup_steps: int):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        if self.warmup_steps <= 0:
            return tf.constant(self.peak, tf.float32)
        progress = (tf.cast(step, tf.float32) + 1.0) / float(self.warmup_steps)
        return self.peak * tf.minimum(1.0, progress)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


def make_optimizer(train: TrainConfig) -> keras.optimizers.Optimizer:
    """The tf_keras Adagrad whose accumulators shard like the variables they serve."""
    return keras.optimizers.Adagrad(
        learning_rate=LinearWarmup(train.learning_rate, train.warmup_steps),
        initial_accumulator_value=train.initial_accumulator,
    )
