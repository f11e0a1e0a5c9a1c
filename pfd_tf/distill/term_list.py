"""The student's distillation terms as a list: each loss with its target student, weight and schedule.

`build_terms` turns the config's term list (`pfd_tf.config.terms`, the
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
`pfd_tf.config.terms.KINDS`, and its builder in `BUILDERS` here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

from pfd_tf._keras import tf
from pfd_tf.config.terms import HINT, LOGIT_MATCHING, RANKING_KINDS, SOFT_LABEL, TermConfig
from pfd_tf.distill.logit_matching import LogitMatching
from pfd_tf.distill.ranking_terms import ranking_term
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
    SOFT_LABEL: lambda term, teachers: SoftLabel(term.temperature, term.teacher or None, term.source_task,
                                                 term.target_task),
    HINT: _hint,
    LOGIT_MATCHING: lambda term, teachers: LogitMatching(term.teacher or None),
    **{kind: ranking_term for kind in RANKING_KINDS},
}


def build_terms(terms: Sequence[TermConfig], teachers: Sequence[str]) -> tuple[WeightedTerm, ...]:
    """The config's terms as losses with their weights and start steps (schedules resolved: `start_step`)."""
    return tuple(WeightedTerm(BUILDERS[term.kind](term, teachers), float(term.weight), term.student,
                              int(term.schedule.start_step), bool(term.mix)) for term in terms)


def check_terms(terms: tuple[WeightedTerm, ...], students: Mapping, teachers: Mapping) -> tuple[WeightedTerm, ...]:
    """`terms`, once each is seen to train a student there is and read a teacher there is, under its own key."""
    keys = set()
    for term in terms:
        if term.student not in students:
            raise ValueError(f"{term.key} trains student {term.student!r}; the students are {list(students)}")
        named = getattr(term.loss, "teacher", None)
        if named is not None and named not in teachers:
            raise ValueError(f"{term.key} reads teacher {named!r}; the teachers are {list(teachers)}")
        if term.key in keys:
            raise ValueError(f"two terms have the loss key {term.key!r}")
        keys.add(term.key)
    return terms


def mixed_weight(terms: Sequence[WeightedTerm], student: str, step: tf.Tensor) -> tf.Tensor:
    """lambda_i of `student` at `step`: the sum of its mixing terms' weights, what its label loss gives up."""
    weights = [term.weight_at(step) for term in terms if term.mix and term.student == student]
    return tf.add_n(weights) if weights else tf.constant(0.0)


def add_terms(loss: tf.Tensor, terms: Sequence[WeightedTerm], step: tf.Tensor, students: Mapping,
              soft_logits: tf.Tensor, teachers: Mapping, out: dict, labels: Mapping | None = None,
              task_losses: Mapping[str, Mapping[str, tf.Tensor]] | None = None) -> tf.Tensor:
    """`loss` plus each student's label loss `out["loss_<name>"]` and the terms, weighted at `step`.

    Per student, w_label,i L_s + its mixing terms (Eq. (5): (1 - lambda_i)
    L_s + lambda_i L_d), then the terms added on top (the hint of Eq. (7))
    in the list's order; each term's value goes to `out[term.key]`.  The
    sums run in the order the shorthand's always did, so its loss is the
    same float.  `teachers`: the teachers' outputs, detached
    (`pfd_tf.distill.routing.detach`).  `labels`: the batch's, by key, for the terms that read them
    (`reads_labels`: the ranking terms' groups).

    A mixing term with a `target_task` takes its weight from that task's
    label loss only (Eq. (7) of "Cross-Task Knowledge Distillation in
    Multi-Task Recommendation": (1 - alpha^A) L^A + alpha^A L^{A-KD}), read
    from `task_losses[student][task]` (each task's weighted loss,
    `pfd_tf.tasks.labels.hard_label_loss`).
    """
    weights = {}
    for term in terms:
        reads = {"labels": labels or {}} if getattr(term.loss, "reads_labels", False) else {}
        out[term.key] = term.loss(students[term.student], soft_logits, teachers, **reads)
        weights[term.key] = term.weight_at(step)
    for name in students:
        mixing = [term for term in terms if term.mix and term.student == name]
        if any(target_task(t) for t in mixing):
            student_loss = _task_mixed_label_loss(mixing, weights, task_losses[name])
        else:
            label_weight = 1.0 - (tf.add_n([weights[t.key] for t in mixing]) if mixing else 0.0)
            student_loss = label_weight * out[f"loss_{name}"]
        for term in mixing:
            student_loss += weights[term.key] * out[term.key]
        loss += student_loss
    for term in terms:
        if not term.mix:
            loss += weights[term.key] * out[term.key]
    return loss


def target_task(term: WeightedTerm) -> str:
    """The student's task `term` trains ("": all of them, the served task's logit)."""
    return getattr(term.loss, "target_task", "")


def _task_mixed_label_loss(mixing: Sequence[WeightedTerm], weights: Mapping[str, tf.Tensor],
                           task_losses: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """sum over tasks t of (1 - w_all - w_t) L_t: a term without a target task mixes with every task's loss, one
    with target task t with L_t only."""
    untargeted = [weights[t.key] for t in mixing if not target_task(t)]
    every = tf.add_n(untargeted) if untargeted else 0.0
    total = tf.constant(0.0)
    for task, task_loss in task_losses.items():
        own = [weights[t.key] for t in mixing if target_task(t) == task]
        total += (1.0 - every - (tf.add_n(own) if own else 0.0)) * task_loss
    return total
