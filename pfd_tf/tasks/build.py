"""The config's tasks as objects: one plain dict from a task kind to its class is the registry."""
from __future__ import annotations

from pfd_tf.config import Config
from pfd_tf.config.tasks import TaskKind
from pfd_tf.tasks.binary import BinaryTask
from pfd_tf.tasks.regression import RegressionTask
from pfd_tf.tasks.task import Task

KINDS: dict[TaskKind, type[Task]] = {TaskKind.BINARY: BinaryTask, TaskKind.REGRESSION: RegressionTask}


def tasks_for(config: Config) -> tuple[Task, ...]:
    """`config.task_specs` (the `tasks:` list, or the one binary task `data.label` stands for) as Task objects,
    the first the served one."""
    return tuple(KINDS[spec.kind](spec.name, spec.label, spec.weight, served=i == 0)
                 for i, spec in enumerate(config.task_specs))
