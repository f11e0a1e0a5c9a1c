"""Task heads: one logit per row for each task beyond the served one, over a network's `final`.

A network's body gives the served task's logit its own way (a DNN's last
Dense, FM's sum of pairwise terms plus first order, ...); that logit, and
its layer's variable names, stay as they were, so a checkpoint of a
one-task run restores into the same network.  Each other task (an auxiliary
target such as the PFD paper's MTL baseline predicts, Section 5.3; the
second label of a multi-task run) gets a Dense(1) head `head_<task>` over
the hidden output every network names `final` (the input of its logit
layer), so the tasks share the whole body: hard parameter sharing
(Caruana 1997).  `TaskHeads.attach` returns the network's `NetworkOutput`
with `by_task` holding every task's logits by name.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.models.network import NetworkOutput


@keras.utils.register_keras_serializable(package="pfd_tf")
class TaskHeads(keras.layers.Layer):
    """Dense(1) heads over `final`, one per task of `tasks` (every task but the served one, `served`)."""

    def __init__(self, served: str, tasks: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.served = served
        self.tasks = tuple(tasks)
        if served in self.tasks:
            raise ValueError(f"the served task {served!r} keeps the body's own logit; heads are for the others")
        self.heads = {task: keras.layers.Dense(1, name=f"head_{task}") for task in self.tasks}

    def call(self, final: tf.Tensor) -> dict[str, tf.Tensor]:
        """`[B, width]` -> {task: `[B]` logits} for each head's task."""
        return {task: tf.squeeze(head(final), axis=-1) for task, head in self.heads.items()}

    def attach(self, output: NetworkOutput) -> NetworkOutput:
        """`output` with `by_task`: the served task's logits (the body's) and each head's, by task name."""
        return NetworkOutput(output.logits, output.hidden, {self.served: output.logits, **self(output.hidden["final"])})

    def get_config(self):
        return {**super().get_config(), "served": self.served, "tasks": list(self.tasks)}


def with_heads(network, output: NetworkOutput) -> NetworkOutput:
    """`output` of `network` with its task heads attached (`network.task_heads`), or as it is without."""
    heads = getattr(network, "task_heads", None)
    return heads.attach(output) if heads is not None else output


def add_task_heads(network, tasks: Sequence[str]) -> None:
    """Gives `network` a head for each task after the first (the served one) of `tasks`; none for one task, nor
    for a multi-task backbone (`pfd_tf.models.zoo.backbone`), whose towers give every task's logits."""
    if len(tasks) > 1 and not getattr(getattr(network, "body", None), "gives_tasks", False):
        network.task_heads = TaskHeads(tasks[0], tasks[1:], name="task_heads")
