"""The ranking terms of `distill.terms`: point-, pair- and list-wise distillation over a batch's lists.

"Knowledge Distillation Techniques for Recommendation Systems" (the survey
of distillation across recall, pre-ranking and ranking) hands an earlier
stage of the cascade the ranking teacher's order of each candidate list by
one of three objectives (`pfd_tf.distill.ranking`): the teacher's top k of
a list as positives (`pointwise_top_k`), BPR over the pairs the teacher
orders (`pairwise_bpr`), softmax cross entropy between the teacher's and
the student's distributions over a list (`listwise_softmax`).

A list is the rows of a batch sharing a group (`data.group_by`, batched
whole by `pfd_tf.data.grouped`, each row's group index in the batch under
`labels[GROUP]`); `ranking.to_lists` lays the teacher's and the student's
logits out alike as `[G, L]` lists.  The teacher's logit is the soft
label's (the one teacher's, or the ensemble's, Eq. (10) of Zhu et al.
2020), or with `teacher` set that teacher's own, detached
(`pfd_tf.distill.routing.detach`), so a term moves its student and the
tables it reads only (`groups`), as the soft label does.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import tf
from pfd_tf.config.terms import LISTWISE_SOFTMAX, PAIRWISE_BPR, POINTWISE_TOP_K, TermConfig
from pfd_tf.distill import ranking, routing
from pfd_tf.distill.terms import key_for, teacher_logits
from pfd_tf.models.network import NetworkOutput
from pfd_tf.names import GROUP

LOSSES = {POINTWISE_TOP_K: ranking.pointwise_top_k, PAIRWISE_BPR: ranking.pairwise_bpr,
          LISTWISE_SOFTMAX: ranking.listwise_softmax}


class RankingTerm:
    """One ranking objective (`kind`, with its keyword `options`: k, margin or temperature) as a term.

    Its loss key is `loss_<kind>` (`loss_<kind>_<student>` for a student
    other than the served one).  It reads the batch's labels (`reads_labels`:
    `pfd_tf.distill.term_list.add_terms` hands them over) for the groups.
    """

    reads_labels = True

    def __init__(self, kind: str, teacher: str | None = None, **options):
        if kind not in LOSSES:
            raise ValueError(f"no ranking term {kind!r} (choose one of: {', '.join(LOSSES)})")
        self.kind, self.teacher, self.options = kind, teacher, dict(options)
        self.key = f"loss_{kind}"

    def groups(self, student: str = routing.STUDENT) -> frozenset[str]:
        return routing.student_loss_groups(student)

    def key_for(self, student: str) -> str:
        return key_for(self.key, student)

    def __call__(self, student: NetworkOutput, soft_logits: tf.Tensor, teachers: Mapping[str, NetworkOutput],
                 labels: Mapping[str, tf.Tensor]) -> tf.Tensor:
        if GROUP not in labels:
            raise ValueError(f"{self.kind} compares scores within lists, and this batch has no groups: set "
                             "data.group_by")
        group = labels[GROUP]
        teacher, mask = ranking.to_lists(group, teacher_logits(self.teacher, soft_logits, teachers, self.kind))
        scores, _ = ranking.to_lists(group, student.logits)
        return LOSSES[self.kind](teacher, scores, mask, **self.options)


def ranking_term(term: TermConfig, teachers) -> RankingTerm:
    """The `distill.terms` entry's term (`pfd_tf.distill.term_list.BUILDERS`)."""
    options = {POINTWISE_TOP_K: {"k": int(term.k)}, PAIRWISE_BPR: {"margin": float(term.margin)},
               LISTWISE_SOFTMAX: {"temperature": float(term.temperature)}}[term.kind]
    return RankingTerm(term.kind, term.teacher or None, **options)
