"""The schema of `distill.terms:`: the distillation terms of a student's loss, each with its weight and schedule.

Part of `pfd_tf.config` (re-exported by `pfd_tf.config.schema`); read,
expanded from the shorthand keys and checked by `pfd_tf.config.terms_checks`.

The student's loss is its label loss plus a weighted sum of terms (Eq. (5)
of the PFD paper, (1 - lambda_i) L_s + lambda_i L_d; Eq. (7) of Zhu et al.
2020 with its hint; Keras 3's `Distiller(distillation_losses,
distillation_loss_weights)` is the anchor of the list form):

    L = w_label,i * L_s + sum over terms k of w_k,i * L_k

w_k,i is the term's `weight` from its schedule's start step on and 0 before
it (Algorithm 1 of the PFD paper: lambda_i = 0 until the swapping step,
the warm-up of Section 4).  A term with `mix: true` takes its weight from
the label loss's: w_label,i = 1 - the sum of the student's mixing terms'
w_k,i, which is Eq. (5) for one soft label.  `mix` defaults to true for the
soft label and logit matching, false for the hint (added on top, Eq. (7)).

Each term names its source (a teacher and that teacher's task) and its
target (a student and that student's task).  A kind's own keys are declared
in `KINDS`: adding a kind is an entry here and its builder in
`pfd_tf.distill.term_list` (beside the loss itself).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TermKind:
    """A kind of distillation term: the keys only it has, and whether it mixes with the label loss by default."""

    keys: tuple[str, ...]
    mixes: bool
    about: str


SOFT_LABEL = "soft_label"
HINT = "hint"
LOGIT_MATCHING = "logit_matching"
POINTWISE_TOP_K = "pointwise_top_k"
PAIRWISE_BPR = "pairwise_bpr"
LISTWISE_SOFTMAX = "listwise_softmax"
# The ranking terms (`pfd_tf.distill.ranking_terms`): over the lists of `data.group_by`.
RANKING_KINDS = (POINTWISE_TOP_K, PAIRWISE_BPR, LISTWISE_SOFTMAX)

KINDS: dict[str, TermKind] = {
    SOFT_LABEL: TermKind(("temperature",), True,
                         "Eq. (8) of Zhu et al. 2020: the student's cross entropy against sigmoid(z_T / tau), times "
                         "tau^2; the PFD paper's L_d at tau = 1"),
    HINT: TermKind(("teacher_layer", "student_layer"), False,
                   "Eq. (9) of Zhu et al. 2020: ||W v_T - v_S||^2 between named hidden outputs, W learned"),
    LOGIT_MATCHING: TermKind((), True, "KD-DAGFM: the mean squared error between the teacher's and student's logits"),
    POINTWISE_TOP_K: TermKind(("k",), False, "the survey of cascade distillation, point-wise: the teacher's top k "
                              "of each list as positives, by log loss"),
    PAIRWISE_BPR: TermKind(("margin",), False, "the survey of cascade distillation, pair-wise: BPR over the pairs "
                           "of a list the teacher orders (by more than margin)"),
    LISTWISE_SOFTMAX: TermKind(("temperature",), False, "the survey of cascade distillation, list-wise: softmax "
                               "cross entropy between the teacher's and the student's scores over a list"),
}

# The keys every kind has; `schedule` is a mapping of `TermSchedule`'s keys.
COMMON_KEYS = ("kind", "weight", "teacher", "student", "source_task", "target_task", "mix", "schedule")


@dataclasses.dataclass(frozen=True)
class TermSchedule:
    """When a term's weight switches on: 0 before `start_step` (or `start_fraction` of the run's steps), its
    weight from that step on (the swapping step k of Algorithm 1 of the PFD paper)."""

    start_step: int = 0
    start_fraction: float = 0.0


@dataclasses.dataclass(frozen=True)
class TermConfig:
    kind: str
    weight: float
    # The source: a teacher's name; empty: the soft label (the one teacher's logit, or the ensemble's, Eq. (10)
    # of Zhu et al.) for soft_label and logit_matching, the first teacher for hint.
    teacher: str = ""
    student: str = "student"  # the target: a student's name (the served student is `student`)
    # The teacher's task the term reads and the student's task it trains (empty: the one task, `data.label`).
    source_task: str = ""
    target_task: str = ""
    mix: bool = True  # the weight is taken from the label loss's (Eq. (5)); default by kind (`KINDS`)
    temperature: float = 1.0  # soft_label, listwise_softmax
    k: int = 1  # pointwise_top_k: the teacher's top k of a list are the positives
    margin: float = 0.0  # pairwise_bpr: pairs the teacher orders by more than this
    teacher_layer: str = "final"  # hint: the teacher's hidden output v_T
    student_layer: str = "final"  # hint: the student's hidden output v_S
    schedule: TermSchedule = TermSchedule()


def term_dict(term: TermConfig) -> dict:
    """The term as YAML writes it: its kind's keys only (`from_dict` refuses another kind's)."""
    keys = [k for k in COMMON_KEYS if k != "schedule"] + list(KINDS[term.kind].keys)
    out = {key: getattr(term, key) for key in keys}
    out["schedule"] = dataclasses.asdict(term.schedule)
    return out
