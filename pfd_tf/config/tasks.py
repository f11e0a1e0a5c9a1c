"""The config's `tasks:` list: which labels a run learns, each a task of `pfd_tf.tasks`.

`tasks: [{name: ctr, label: click}, {name: cvr, label: buy, kind: binary, weight: 1.0}]`
names each task (its key in batches, metrics and exports), the column it
reads, its kind (`binary`: log loss; `regression`: mean squared error) and
its loss's weight.  `data.label: click` is shorthand for the one binary task
`{name: main, label: click}` (`pfd_tf.names.DEFAULT_TASK`).  The first task
is the served one: its keys carry no task name (`student_auc`, the export's
`probability`), so the metric keys, export outputs and checkpoints of a
one-task run are those of the runs before tasks existed.  Schema only; the checks are
`pfd_tf.config.task_checks`.
"""
from __future__ import annotations

import dataclasses
import enum


class TaskKind(str, enum.Enum):
    """What a label is and so how it is trained (`pfd_tf.tasks.build.KINDS`)."""

    BINARY = "binary"  # 0 or 1: log loss, AUC
    REGRESSION = "regression"  # a number: mean squared error


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    name: str
    label: str  # the column
    kind: TaskKind = TaskKind.BINARY
    weight: float = 1.0
    # A regression target as the task learns it: (transform(y) - center) / scale (pfd_tf.tasks.targets), e.g.
    # the standardized log dwell time of the PFD paper's MTL baseline (Section 5.3).
    transform: str = "none"  # none | log1p
    center: float = 0.0
    scale: float = 1.0
