"""Several teachers' logits combined into one soft label: L_KD(S, sum_i alpha_i T_i), Eq. (10) of Zhu et al. 2020.

The teachers' outputs arrive detached (`pfd_tf.distill.routing.detach`), so
nothing here moves a teacher.  Both ensembles combine logits:
z_E = sum_i alpha_i z_Ti, and the soft label is sigmoid(z_E / tau).

- `AverageEnsemble`: alpha_i = 1 / M.
- `GatingEnsemble`: alpha_i = softmax_i(w_i z_Ti + b_i), Eq. (11): per
  example, from all teachers' outputs; w and b start at 0 (the average).
  Eq. (11) leaves open which loss trains the gate.  Trained by the student's
  distillation loss, the gate would be pulled toward whichever teacher the
  student already agrees with, not the better one; so the gate is trained
  by the ensemble's own log loss on the labels, L_CE(y, z_E) (`loss_gate`),
  in the same step as the student.  The student then distils from the gated
  ensemble.  With `distill.gate_data: validation` that loss is computed on
  validation rows instead (`gate_loss_on`, `pfd_tf.distill.gate_data`).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.distill import routing
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.distill.losses import logloss


class AverageEnsemble(keras.layers.Layer):
    def call(self, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`logits`: `[B, M]` teachers' logits -> (z_E `[B]`, alpha `[B, M]`)."""
        alpha = tf.ones_like(logits) / tf.cast(tf.shape(logits)[-1], logits.dtype)
        return tf.reduce_sum(alpha * logits, axis=-1), alpha


class GatingEnsemble(keras.layers.Layer):
    """The teacher gating network of Eq. (11): 2M parameters {w_i, b_i}."""

    def __init__(self, teachers: int, **kwargs):
        super().__init__(**kwargs)
        self.teachers = int(teachers)
        self.w = self.add_weight(name="w", shape=[self.teachers], initializer="zeros")
        self.b = self.add_weight(name="b", shape=[self.teachers], initializer="zeros")

    def call(self, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        alpha = tf.nn.softmax(self.w * logits + self.b, axis=-1)
        return tf.reduce_sum(alpha * logits, axis=-1), alpha

    def get_config(self):
        return {**super().get_config(), "teachers": self.teachers}


def gate_loss_on(gate: GatingEnsemble, teachers: Sequence, ids, labels) -> tf.Tensor:
    """L_CE(y, z_E) on rows of their own (`distill.gate_data: validation`).

    The teachers run in inference mode (no dropout, no batch-norm update) and
    their outputs are detached, so these rows move the gate and nothing else.
    """
    bank = FeatureBank(ids)
    logits = [routing.detach(teacher.forward(ids, training=False, bank=bank)).logits for teacher in teachers]
    ensemble_logits, _ = gate(tf.stack(logits, axis=-1))
    return logloss(labels, ensemble_logits)
