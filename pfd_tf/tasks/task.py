"""The task base: a label's name, column, weight, loss and metrics.

The pipeline yields `(ids, {task name: labels [B] float32})`, and every
network gives one logit per row and task; a task turns the two into its loss
(a scalar, the mean over the batch) and updates its metrics.  The metric
keys come from `pfd_tf.names` (`task_key`): the served task (the first of
the config's tasks; the one `data.label` stands for) keeps the keys of a
one-label run (`student_auc`, `loss_student`, the export's `probability`),
so that its metrics.json, logs and checkpoints are what they were; another
task's keys carry its name (`student_cvr_auc`).
"""
from __future__ import annotations

from typing import ClassVar

from pfd_tf._keras import keras, tf
from pfd_tf.names import task_key


class Task:
    """One label: `name` (a Python identifier: it becomes a metric and export key), its column `label`, and
    `weight`, its loss's weight in a network's loss (the sum over tasks of weight * loss)."""

    kind: ClassVar[str] = ""

    def __init__(self, name: str, label: str, weight: float = 1.0, served: bool = True):
        """`served`: the served task (the first), whose keys carry no task name."""
        self.name = name
        self.label = label
        self.weight = float(weight)
        self.served = bool(served)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, label={self.label!r}, weight={self.weight}, "
                f"served={self.served})")

    def key(self, who: str) -> str:
        """`who` (a network, `ensemble`) for this task in loss, logit and metric keys (`pfd_tf.names.task_key`)."""
        return task_key(who, "" if self.served else self.name)

    def loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """The mean loss of `logits` [B] against `labels` [B]."""
        raise NotImplementedError

    def metrics(self, who: str) -> list[tuple[str, keras.metrics.Metric]]:
        """(key of `who`'s logits for this task, metric reading `(labels, logits)`) for each progress metric."""
        raise NotImplementedError
