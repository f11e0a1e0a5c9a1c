"""CrossDistil's student side: calibrated, error-corrected distillation from the augmented tasks.

"Cross-Task Knowledge Distillation in Multi-Task Recommendation" (AAAI
2022), Section 3.2-3.4.  The augmented ranking tasks A+, B+ (`quadruplets`,
Eq. (4)) are the teachers; the original tasks A, B the students:

    L^A        = CE(y^A, sigmoid(r^A))                                       (Eq. (5))
    L^{A-KD}   = CE(sigmoid(r^{A+} / tau), sigmoid(r^A / tau))               (Eq. (6))
    L^{A-Stu}  = (1 - alpha^A) L^A + alpha^A L^{A-KD}                        (Eq. (7))

where the teacher's logit r^{A+} is first calibrated (r~ = P r + Q, Eq. (8),
`calibration.PlattScaling`) and then error-corrected towards the label's
side with margin m:

    r <- 1[y] max(1[y] r, m),   1[y] = +1 if y = 1 else -1                   (Eq. (10))

i.e. a positive's teacher logit is raised to at least m, a negative's
lowered to at most -m; a teacher already right with probability at least
sigmoid(m) is unchanged.  The soft label is behind `stop_gradient`: neither
the teacher nor P, Q learn from L^{A-KD} ("the student will not mislead the
teacher", Section 3.2; Eq. (10) "does not affect training of the teacher
model").  Eq. (6) has no tau^2 factor (unlike `pfd_tf.distill.losses.
distillation_loss`, Hinton et al.'s scaling): it is written as printed.

`crossdistil_losses` assembles one step's losses for two tasks: L^{Model} of
Algorithm 1 (line 10) for Theta and L^{Cal} (Eq. (9)) for Omega; its flags
give the ablations of Table 4 (`calibrate=False`: w/o calibration,
`correct=False`: w/o correction, beta1 = beta2 = 0: w/o auxiliary rank).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from pfd_tf._keras import tf
from pfd_tf.distill.losses import logloss
from pfd_tf.multitask.calibration import PlattScaling, calibration_loss
from pfd_tf.multitask.quadruplets import FIRST, SECOND, Quadruplets, augmented_ranking_loss


def error_correct(teacher_logits: tf.Tensor, labels: tf.Tensor, margin: float) -> tf.Tensor:
    """Eq. (10): 1[y] max(1[y] r, m), behind `stop_gradient` (no gradient to the teacher nor to P, Q)."""
    sign = 2.0 * tf.cast(tf.cast(labels, tf.float32) > 0.5, teacher_logits.dtype) - 1.0
    return tf.stop_gradient(sign * tf.maximum(sign * teacher_logits, tf.cast(margin, teacher_logits.dtype)))


def cross_task_distillation_loss(teacher_logits: tf.Tensor, student_logits: tf.Tensor,
                                 temperature: float = 1.0) -> tf.Tensor:
    """Eq. (6): mean CE(sigmoid(sg(r_T) / tau), sigmoid(r_S / tau)), no tau^2 factor."""
    soft_labels = tf.sigmoid(tf.stop_gradient(teacher_logits) / temperature)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=soft_labels,
                                                                  logits=student_logits / temperature))


def student_loss(labels: tf.Tensor, student_logits: tf.Tensor, teacher_logits: tf.Tensor, alpha: float,
                 temperature: float = 1.0) -> tf.Tensor:
    """Eq. (7): (1 - alpha) CE(y, sigmoid(r_S)) + alpha L^{KD} (Eq. (5), (6))."""
    return ((1.0 - alpha) * logloss(labels, student_logits)
            + alpha * cross_task_distillation_loss(teacher_logits, student_logits, temperature))


@dataclasses.dataclass(frozen=True)
class TaskParams:
    """One task's hyper-parameters (Section 4.6): beta1, beta2 of Eq. (4), alpha of Eq. (7), m of Eq. (10)."""

    beta1: float = 1.0
    beta2: float = 1.0
    alpha: float = 0.5
    margin: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] (Eq. (7)), got {self.alpha}")
        if self.beta1 < 0 or self.beta2 < 0:
            raise ValueError(f"beta1, beta2 must be >= 0 (Eq. (4)), got {self.beta1}, {self.beta2}")


@dataclasses.dataclass(frozen=True)
class CrossDistilParams:
    """`tasks`: (A, B), A's label first in the quadruplets; `params`: task -> `TaskParams`;
    `temperature`: tau of Eq. (6); `ranking_weight`: the weight of L^{A+}, L^{B+} in L^{Model}."""

    tasks: tuple[str, str]
    params: Mapping[str, TaskParams] = dataclasses.field(default_factory=dict)
    temperature: float = 1.0
    ranking_weight: float = 1.0
    calibrate: bool = True
    correct: bool = True

    def __post_init__(self):
        if len(self.tasks) != 2 or self.tasks[0] == self.tasks[1]:
            raise ValueError(f"CrossDistil needs two distinct tasks, got {self.tasks}")
        unknown = sorted(set(self.params) - set(self.tasks))
        if unknown:
            raise ValueError(f"parameters for unknown task(s) {unknown}; the tasks are {list(self.tasks)}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def of(self, task: str) -> TaskParams:
        return self.params.get(task, TaskParams())


def soft_logits(teacher_logits: tf.Tensor, labels: tf.Tensor, platt: PlattScaling | None,
                margin: float | None) -> tf.Tensor:
    """The teacher logit a student distils from: calibrated (Eq. (8), unless `platt` is None), then
    error-corrected (Eq. (10), unless `margin` is None); always behind `stop_gradient`."""
    logits = tf.stop_gradient(teacher_logits)
    if platt is not None:
        logits = platt(logits)
    if margin is not None:
        logits = error_correct(logits, labels, margin)
    return tf.stop_gradient(logits)


def crossdistil_losses(labels: Mapping[str, tf.Tensor], student_logits: Mapping[str, tf.Tensor],
                       teacher_logits: Mapping[str, tf.Tensor], calibration: Mapping[str, PlattScaling],
                       quadruplets: Quadruplets, params: CrossDistilParams) -> dict[str, tf.Tensor]:
    """One step's losses, by key (t each of the two tasks):

    `loss_<t>` (Eq. (5)), `loss_<t>_ranking` (Eq. (4), the augmented task),
    `loss_<t>_distill` (Eq. (6)), `loss_<t>_student` (Eq. (7)),
    `loss_<t>_calibration` (a term of Eq. (9)); `loss_model` = sum over t of
    ranking_weight loss_<t>_ranking + loss_<t>_student (Algorithm 1, line 10:
    what Theta minimises) and `loss_calibration` (Eq. (9): what Omega
    minimises).  `quadruplets` come from `sample_quadruplets(labels[A], labels[B], ...)`.
    """
    losses = {}
    model, calibration_total = tf.zeros([]), tf.zeros([])
    for task, role in zip(params.tasks, (FIRST, SECOND)):
        p, y = params.of(task), labels[task]
        teacher = teacher_logits[task]
        ranking = augmented_ranking_loss(teacher, quadruplets, role, p.beta1, p.beta2)
        soft = soft_logits(teacher, y, calibration[task] if params.calibrate else None,
                           p.margin if params.correct else None)
        distill = cross_task_distillation_loss(soft, student_logits[task], params.temperature)
        hard = logloss(y, student_logits[task])
        student = (1.0 - p.alpha) * hard + p.alpha * distill
        calibrate = calibration_loss(y, teacher, calibration[task])
        losses.update({f"loss_{task}": hard, f"loss_{task}_ranking": ranking, f"loss_{task}_distill": distill,
                       f"loss_{task}_student": student, f"loss_{task}_calibration": calibrate})
        model += params.ranking_weight * ranking + student
        calibration_total += calibrate
    losses["loss_model"] = model
    losses["loss_calibration"] = calibration_total
    return losses
