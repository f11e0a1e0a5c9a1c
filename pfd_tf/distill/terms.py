"""Distillation terms L_KD(S, T) of the student's loss, Eq. (7) of Zhu et al. 2020.

The student's loss is gamma * L_CE(y, y_S) + sum over terms of weight * L_KD
(in the PFD paper's notation, Eq. (5): (1 - lambda) L_s + lambda L_d); the
weights and schedules are `pfd_tf.distill.term_list`'s, from the config's
`distill.terms` (`pfd_tf.config.terms`).  Each
term sees the teachers' outputs detached (`pfd_tf.distill.routing.detach`)
and declares the variable groups it may move (`groups(student)`, for the
student it trains), which `tests/distill/test_routing.py` holds it to.  A term's loss
key is `key` for the served student and `<key>_<name>` for another
(`key_for`).
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import keras, tf
from pfd_tf.distill import routing
from pfd_tf.distill.losses import distillation_loss
from pfd_tf.models.network import NetworkOutput
from pfd_tf.names import task_key


class SoftLabel:
    """Eq. (8): L_CE(sigmoid(z_T / tau), sigmoid(z_S / tau)), times tau^2 (`pfd_tf.distill.losses`).

    z_T is the one teacher's logit, or the ensemble's (Eq. (10)), or, with
    `teacher` set, that teacher's own logit.  With `source_task`, z_T is that
    task's logit of the teacher (the named one, or the only one); with
    `target_task`, z_S is that task's logit of the student (its head over
    `final`, `pfd_tf.models.heads`), so the term moves that head and what the
    head reads, never another task's head: naive cross-task distillation
    (Section 3.2 of "Cross-Task Knowledge Distillation in Multi-Task
    Recommendation") is a soft label with `source_task: like, target_task: buy`.
    A term naming `target_task` has the key `loss_distill_<target_task>`.
    """

    key = "loss_distill"

    def __init__(self, temperature: float = 1.0, teacher: str | None = None, source_task: str = "",
                 target_task: str = ""):
        self.temperature = float(temperature)
        self.teacher = teacher
        self.source_task, self.target_task = source_task, target_task

    def groups(self, student: str = routing.STUDENT) -> frozenset[str]:
        return routing.student_loss_groups(student)

    def key_for(self, student: str) -> str:
        return key_for(task_key(self.key, self.target_task), student)

    def __call__(self, student: NetworkOutput, soft_logits: tf.Tensor, teachers: Mapping[str, NetworkOutput]):
        source = teacher_logits(self.teacher, soft_logits, teachers, "the soft label", self.source_task)
        return distillation_loss(source, task_logits(student, self.target_task, "the student"), self.temperature)


class Hint(keras.layers.Layer):
    """Eq. (9): ||W v_T - v_S||^2, v_T a teacher's named hidden output, v_S the student's, W learned.

    The squared norm is summed over the student's `width` dimensions and
    averaged over the batch.  W (`[m, n]`, no bias) is created on the first
    call, when v_T's size m is known.
    """

    key = "loss_hint"

    def __init__(self, teacher: str, teacher_layer: str = "final", student_layer: str = "final",
                 width: int | None = None, student: str = routing.STUDENT, **kwargs):
        """A hint from teacher `teacher`'s hidden output `teacher_layer` to student `student`'s `student_layer`."""
        super().__init__(**kwargs)
        self.teacher, self.teacher_layer, self.student_layer = teacher, teacher_layer, student_layer
        self.student = student
        self.projection = keras.layers.Dense(width, use_bias=False, name="w") if width else None

    def call(self, student: NetworkOutput, soft_logits, teachers: Mapping[str, NetworkOutput]):
        v_s = _hidden(student, self.student_layer, "the student")
        v_t = _hidden(teachers[self.teacher], self.teacher_layer, f"teacher {self.teacher!r}")
        if self.projection is None:
            self.projection = keras.layers.Dense(int(v_s.shape[-1]), use_bias=False, name="w")
        return tf.reduce_mean(tf.reduce_sum(tf.square(self.projection(v_t) - v_s), axis=-1))

    def groups(self, student: str = routing.STUDENT) -> frozenset[str]:
        return routing.student_loss_groups(student) | {routing.HINT}

    def key_for(self, student: str) -> str:
        return key_for(self.key, student)


def key_for(key: str, student: str) -> str:
    """A term's loss key for `student`: `key` for the served student, `<key>_<student>` for another."""
    return key if student == routing.STUDENT else f"{key}_{student}"


def teacher_logits(teacher: str | None, soft_logits: tf.Tensor, teachers: Mapping[str, NetworkOutput],
                   who: str = "a term", task: str = "") -> tf.Tensor:
    """The logit term `who` distils from: the soft label's (`teacher` None), or teacher `teacher`'s own; with
    `task`, that task's logit of teacher `teacher` (None: the one teacher there is)."""
    if teacher is None and not task:
        return soft_logits
    if teacher is None:
        if len(teachers) != 1:
            raise ValueError(f"{who} reads task {task!r} of a teacher; name it (the teachers are "
                             f"{', '.join(sorted(teachers)) or 'none'})")
        teacher = next(iter(teachers))
    if teacher not in teachers:
        raise ValueError(f"{who} names teacher {teacher!r}; the teachers are {', '.join(sorted(teachers)) or 'none'}")
    return task_logits(teachers[teacher], task, f"teacher {teacher!r}")


def task_logits(output: NetworkOutput, task: str, who: str = "a network") -> tf.Tensor:
    """`output`'s logits for task `task` (`by_task`), or its served task's (`task` empty, or a one-task network's
    only task)."""
    if not task:
        return output.logits
    if not output.by_task:
        return output.logits  # one task: the config's checks let `task` name only it
    if task not in output.by_task:
        raise ValueError(f"{who} has no task {task!r} (its tasks: {', '.join(output.by_task)})")
    return output.by_task[task]


def _hidden(output: NetworkOutput, layer: str, who: str) -> tf.Tensor:
    if layer not in output.hidden:
        raise ValueError(f"{who} has no hidden output {layer!r} (it has: {', '.join(sorted(output.hidden))})")
    return output.hidden[layer]
