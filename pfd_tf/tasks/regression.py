"""A continuous label (dwell time, watch fraction): mean squared error, scored by MSE and RMSE.

The PFD paper's MTL baseline (Section 5.3) predicts each continuous
privileged feature as an auxiliary task trained by mean squared error; the
network's output for the task is the prediction itself (no link function),
so "logits" here are predictions.
"""
from __future__ import annotations

from pfd_tf._keras import keras, tf
from pfd_tf.names import mse_key, rmse_key
from pfd_tf.tasks.task import Task


class RegressionTask(Task):
    kind = "regression"

    def loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """The mean of (y - f)^2 over the batch."""
        labels = tf.cast(labels, logits.dtype)
        return tf.reduce_mean(tf.square(labels - logits))

    def metrics(self, who: str) -> list[tuple[str, keras.metrics.Metric]]:
        """`<who>_<task>_mse` and `<who>_<task>_rmse` (`<who>_mse`, `<who>_rmse` for the served task)."""
        key = self.key(who)
        return [(f"{key}_logits", keras.metrics.MeanSquaredError(name=mse_key(key))),
                (f"{key}_logits", keras.metrics.RootMeanSquaredError(name=rmse_key(key)))]
