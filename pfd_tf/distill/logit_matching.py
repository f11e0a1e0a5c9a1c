"""KD-DAGFM's distillation term: the mean squared error between the teacher's and the student's logits.

"Directed Acyclic Graph Factorization Machines for CTR Prediction via
Knowledge Distillation" (Tian et al., WSDM 2023) distils a
teacher into a DAGFM student by matching logits, not probabilities:

    L_KD = mean over the batch of (z_T - z_S)^2,

with z_T behind a stop-gradient, as the authors' public implementation
(github.com/Ethan-TZ/DAGFM) computes it.  Their distillation phase weighs it against the label's log loss as

    L = alpha * L_CE + beta * L_KD,   alpha = 0.1, beta = 921.6,

the values of every run configuration they publish (Criteo, Avazu,
MovieLens-1M).  921.6 is 0.9 x 1024, their batch size: as if 0.9 of the
loss were the squared error summed over the batch and 0.1 the mean log loss.
In this trainer's form, (1 - lambda) L_CE + lambda L_KD (Eq. (5) of the PFD
paper, Eq. (7) of Zhu et al. 2020), that is

    lambda = beta / (alpha + beta) = 0.99989,   times an overall alpha + beta = 921.7

(`authors_lambda`, `authors_scale`).  The overall factor only rescales the
gradient: their optimizer, Adam, is invariant to it (but for the relative
weight of its weight decay); under Adagrad or SGD it is a 921.7-fold
learning rate, which a rate chosen on a validation world absorbs.  In their
distillation phase the student reads the pre-trained teacher's embedding
tables, detached: only the student's own layers learn.  Here the term may
move the groups `groups` names (the student's variables and the tables it
shares with a co-trained teacher); reading a frozen teacher's tables is not
offered.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import tf
from pfd_tf.distill import routing
from pfd_tf.distill.terms import key_for, teacher_logits
from pfd_tf.models.network import NetworkOutput

AUTHORS_LABEL_WEIGHT = 0.1  # alpha of the authors' run configurations
AUTHORS_MATCHING_WEIGHT = 921.6  # beta


def authors_lambda(label_weight: float = AUTHORS_LABEL_WEIGHT,
                   matching_weight: float = AUTHORS_MATCHING_WEIGHT) -> float:
    """lambda of (1 - lambda) L_CE + lambda L_KD equal (up to `authors_scale`) to alpha L_CE + beta L_KD."""
    return matching_weight / (label_weight + matching_weight)


def authors_scale(label_weight: float = AUTHORS_LABEL_WEIGHT,
                  matching_weight: float = AUTHORS_MATCHING_WEIGHT) -> float:
    """alpha + beta: alpha L_CE + beta L_KD = scale * ((1 - lambda) L_CE + lambda L_KD)."""
    return label_weight + matching_weight


class LogitMatching:
    """L_KD = mean((sg(z_T) - z_S)^2) over the batch (KD-DAGFM).

    z_T is the soft label's logit (the one teacher's, or the ensemble's),
    or, with `teacher` set, that teacher's own logit.
    """

    key = "loss_logit_matching"

    def __init__(self, teacher: str | None = None):
        self.teacher = teacher

    def groups(self, student: str = routing.STUDENT) -> frozenset[str]:
        return routing.student_loss_groups(student)

    def key_for(self, student: str) -> str:
        return key_for(self.key, student)

    def __call__(self, student: NetworkOutput, soft_logits: tf.Tensor,
                 teachers: Mapping[str, NetworkOutput]) -> tf.Tensor:
        target = tf.stop_gradient(tf.cast(teacher_logits(self.teacher, soft_logits, teachers, "logit matching"),
                                         student.logits.dtype))
        return tf.reduce_mean(tf.square(target - student.logits))
