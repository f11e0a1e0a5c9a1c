"""What a task learns from its label column: the label itself, or a regression target transformed and standardized.

The pipeline yields `target(spec, column)` for each task
(`pfd_tf.data.pipeline`), so the loss, the progress metrics and the
held-out MSE all read the same values: (transform(y) - center) / scale, with
transform `none` or `log1p` (`tasks[i].transform`, `center`, `scale`).  The
PFD paper's MTL baseline (Section 5.3) regresses the standardized dwell time
(`pfd_tf.datasets.mtl_baseline_config` writes the log dwell time's mean and
std on the train days); an exported `prediction_<task>` is on that scale.
"""
from __future__ import annotations

from pfd_tf._keras import tf
from pfd_tf.config.tasks import TaskConfig


def target(spec: TaskConfig, column: tf.Tensor) -> tf.Tensor:
    """`column` (the task's label column, parsed) as float32, transformed and standardized as `spec` says."""
    values = tf.cast(column, tf.float32)
    if spec.transform == "log1p":
        values = tf.math.log1p(values)
    if spec.center != 0.0 or spec.scale != 1.0:
        values = (values - spec.center) / spec.scale
    return values
