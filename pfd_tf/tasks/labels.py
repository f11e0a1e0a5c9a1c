"""A network's hard-label loss over the tasks, and a batch's labels by task: what the distiller's step reads.

L_t and L_s of Eq. (5) of the PFD paper are each network's loss on the
labels; with several tasks, the weighted sum over tasks of each task's loss
on its own labels and logits (the served task's logits are the network's
own, `NetworkOutput.logits`; another task's come from its head,
`NetworkOutput.by_task`, `pfd_tf.models.heads`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import tf
from pfd_tf.tasks.task import Task


def labels_by_task(tasks: Sequence[Task], labels) -> dict[str, tf.Tensor]:
    """`labels` as the pipeline yields them, task name -> `[batch]`; a bare tensor is the one task's."""
    if isinstance(labels, Mapping):
        return dict(labels)
    if len(tasks) != 1:
        raise ValueError(f"labels for tasks {[t.name for t in tasks]} come as a mapping by task name")
    return {tasks[0].name: labels}


def hard_label_loss(tasks: Sequence[Task], who: str, output, labels: Mapping[str, tf.Tensor],
                    out: dict, per_task: dict | None = None) -> tf.Tensor:
    """L_t or L_s of network `who` (its `NetworkOutput`): the weighted sum over `tasks` of each task's loss on
    its labels (Eq. (6) for a binary task); adds each task's logits to `out` (`<who>_logits` for the served
    task, `<who>_<task>_logits` for another), and each task's weighted loss to `per_task` (by task name)."""
    by_task = output.by_task or {tasks[0].name: output.logits}
    terms = []
    for task in tasks:
        out[f"{task.key(who)}_logits"] = by_task[task.name]
        terms.append(task.weight * task.loss(labels[task.name], by_task[task.name]))
        if per_task is not None:
            per_task[task.name] = terms[-1]
    return tf.add_n(terms) if len(terms) > 1 else terms[0]
