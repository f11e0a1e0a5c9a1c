"""Names that several modules spell: the served student, where networks sit in a distiller, tasks, metric keys.

The served student is named `student`: the network `Distiller.call` returns and
`pfd-export` writes, `model/student` in checkpoints, the `student` group of the
gradient routing (`pfd_tf.distill.routing`) and the `student` entry of
metrics.json.  The one teacher of a preset mode is named `teacher`.  The
attributes below are the Keras/checkpoint paths (`model/teacher`,
`model/teacher_<name>`, `model/student_<name>`): changing them orphans every
checkpoint written before.

Plain Python, no TensorFlow: `models/` (network names), `distill/` (the
distiller, its metrics, the routing), evaluation, early stopping and the
progress lines all read it.
"""
from __future__ import annotations

SERVED = "student"  # the name of the student `Distiller.call` returns, the one exported
PRESET_TEACHER = "teacher"  # the one teacher of the preset modes (lupi, md, pfd, pfd_md)
# The name of the one task `data.label` stands for (`pfd_tf.tasks`): its labels' key in a batch.
DEFAULT_TASK = "main"
# With `data.group_by`: the key of a batch's labels under which each row's group index in the batch comes
# (`pfd_tf.data.grouped`), what the ranking terms read (`pfd_tf.distill.ranking_terms`); no task may take it.
GROUP = "_group"


def teacher_attribute(name: str) -> str:
    """Where a teacher sits in the distiller, hence in its checkpoints: `model/teacher` for the preset's
    one teacher, `model/teacher_<name>` for a teacher of a `teachers:` list; also the teacher network's name."""
    return PRESET_TEACHER if name == PRESET_TEACHER else f"teacher_{name}"


def student_attribute(name: str) -> str:
    """Where a student sits: `model/student` for the served one, `model/student_<name>` for another."""
    return SERVED if name == SERVED else f"student_{name}"


def task_key(who: str, task: str = "") -> str:
    """Network `who` on task `task` in the keys below: `<who>_<task>`, or `who` for the served task (the first,
    `task` empty), so that a one-task run's metric keys and export outputs are those of the runs before tasks."""
    return f"{who}_{task}" if task else who


def auc_key(who: str) -> str:
    """The AUC of network `who` (a student, a teacher, `ensemble`) in the logs and the held-out results."""
    return f"{who}_auc"


def logloss_key(who: str) -> str:
    """The log loss of network `who` in the logs and the held-out results."""
    return f"{who}_logloss"


def mse_key(who: str) -> str:
    """The mean squared error of `who` (a `task_key`) on a regression task."""
    return f"{who}_mse"


def rmse_key(who: str) -> str:
    """The root mean squared error of `who` (a `task_key`) on a regression task."""
    return f"{who}_rmse"
