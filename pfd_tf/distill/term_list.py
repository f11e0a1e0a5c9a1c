"""The student's distillation terms as a list: each loss with its target student, weight and schedule.

`build_terms` turns the config's term list (`pfd_tf.config_terms`, the
shorthand expanded by `pfd_tf.config.expand_terms`) into `WeightedTerm`s,
which `Distiller.compute_losses` loops over:

    L = w_label,i * L_s + sum over terms k of w_k,i * L_k,
    w_k,i = weight_k if step i >= start_k else 0,
    w_label,i = 1 - sum of w_k,i over the student's terms with mix

(Eq. (5) of the PFD paper for one soft label: lambda_i = 0 before the
swapping step k of Algorithm 1, lambda after; Eq. (7) of Zhu et al. 2020
with a hint added on top).  A new kind of term is its loss (a callable
`(student_output, soft_logits, teachers) -> loss` with `key`, `key_for`
and `groups`, as in `pfd_tf.distill.terms`), its keys in
`pfd_tf.config_terms.KINDS`, and its builder in `BUILDERS` here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.config_terms import HINT, LOGIT_MATCHING, SOFT_LABEL, TermConfig
from pfd_tf.distill.logit_matching import LogitMatching
from pfd_tf.distill.terms import Hint, SoftLabel
from pfd_tf.names import SERVED


@dataclasses.dataclass(frozen=True)
class WeightedTerm:
    """`loss` into student `student`, weighing `weight` from step `start_step` on and 0 before; with `mix`, its
    weight is taken from the student's label loss (Eq. (5))."""

    loss: Any
    weight: float
    student: str = SERVED
    start_step: int = 0
    mix: bool = True

    @property
    def key(self) -> str:
        """Its loss key in `compute_losses` and the logs: `loss_distill`, `loss_hint_<student>`, ..."""
        return self.loss.key_for(self.student)

    @property
    def attribute(self) -> str:
        """Where a term with variables (the hint's W) sits in the distiller, hence in checkpoints: `hint` for the
        served student's hint, as before the list existed."""
        return self.key[len("loss_"):]

    def weight_at(self, step: tf.Tensor) -> tf.Tensor:
        """w_k,i: `weight` from `start_step` on, 0 before (the switch of Algorithm 1)."""
        return tf.where(tf.cast(step, tf.int64) >= self.start_step, self.weight, 0.0)


def _hint(term: TermConfig, teachers: Sequence[str]) -> Hint:
    return Hint(term.teacher or teachers[0], term.teacher_layer, term.student_layer, student=term.student,
                name=HINT if term.student == SERVED else f"{HINT}_{term.student}")


BUILDERS: dict[str, Callable[[TermConfig, Sequence[str]], Any]] = {
    SOFT_LABEL: lambda term, teachers: SoftLabel(term.temperature, term.teacher or None),
    HINT: _hint,
    LOGIT_MATCHING: lambda term, teachers: LogitMatching(term.teacher or None),
}


def build_terms(terms: Sequence[TermConfig], teachers: Sequence[str]) -> tuple[WeightedTerm, ...]:
    """The config's terms as losses with their weights and start steps (schedules resolved: `start_step`)."""
    return tuple(WeightedTerm(BUILDERS[term.kind](term, teachers), float(term.weight), term.student,
                              int(term.schedule.start_step), bool(term.mix)) for term in terms)
