"""The optimizers, with a linear learning-rate warm-up (Section 5.1 of the PFD paper).

"In the first one million steps, the learning rate is increased linearly to
the pre-defined value 0.01, which is then kept fixed."  The schedule is a
`LearningRateSchedule` object, as ParameterServerStrategy needs, and reads the
step from the optimizer, so it resumes where a restarted run left off.
`train.optimizer` picks Adagrad (the paper's) or Adam; both warm up.
"""
from __future__ import annotations

from pfd_tf._keras import keras, tf
from pfd_tf.config import Optimizer, TrainConfig


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
    """The tf_keras optimizer `train.optimizer` names; its slots shard like the variables they serve."""
    learning_rate = LinearWarmup(train.learning_rate, train.warmup_steps)
    if train.optimizer is Optimizer.ADAM:
        return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=train.adam_beta_1,
                                     beta_2=train.adam_beta_2, epsilon=train.adam_epsilon)
    return keras.optimizers.Adagrad(learning_rate=learning_rate, initial_accumulator_value=train.initial_accumulator)
