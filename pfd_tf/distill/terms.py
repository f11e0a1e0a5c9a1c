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


class SoftLabel:
    """Eq. (8): L_CE(sigmoid(z_T / tau), sigmoid(z_S / tau)), times tau^2 (`pfd_tf.distill.losses`).

    z_T is the one teacher's logit, or the ensemble's (Eq. (10)), or, with
    `teacher` set, that teacher's own logit.
    """

    key = "loss_distill"

    def __init__(self, temperature: float = 1.0, teacher: str | None = None):
        self.temperature = float(temperature)
        self.teacher = teacher

    def groups(self, student: str = routing.STUDENT) -> frozenset[str]:
        return routing.student_loss_groups(student)

    def key_for(self, student: str) -> str:
        return key_for(self.key, student)

    def __call__(self, student: NetworkOutput, soft_logits: tf.Tensor, teachers: Mapping[str, NetworkOutput]):
        return distillation_loss(teacher_logits(self.teacher, soft_logits, teachers, "the soft label"),
                                 student.logits, self.temperature)


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
                   who: str = "a term") -> tf.Tensor:
    """The logit term `who` distils from: the soft label's (`teacher` None), or teacher `teacher`'s own."""
    if teacher is None:
        return soft_logits
    if teacher not in teachers:
        raise ValueError(f"{who} names teacher {teacher!r}; the teachers are {', '.join(sorted(teachers)) or 'none'}")
    return teachers[teacher].logits


def _hidden(output: NetworkOutput, layer: str, who: str) -> tf.Tensor:
    if layer not in output.hidden:
        raise ValueError(f"{who} has no hidden output {layer!r} (it has: {', '.join(sorted(output.hidden))})")
    return output.hidden[layer]
