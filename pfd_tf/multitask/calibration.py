"""CrossDistil's calibration: Platt scaling of the augmented tasks' logits, Eq. (8)-(9), trained bi-level.

The augmented tasks (`quadruplets`) are trained by pairwise losses only, so
sigmoid(r^{A+}) is no probability (Section 3.2).  Before their predictions
serve as soft labels, an affine map per task calibrates them (Platt
scaling):

    r~^{A+} = P^A r^{A+} + Q^A,    y~^{A+} = sigmoid(r~^{A+})                 (Eq. (8))

The paper prints y~ = 1 / (1 + exp r~), a sign slip: that is sigmoid(-r~),
which would reverse the teacher's ranking (and push P below 0 to undo it).
Here y~ is the standard sigmoid, as in Eq. (5) and Platt (1999).  P starts
at 1 and Q at 0 (the identity).  The calibration loss is the log loss of the
calibrated teacher against the task's own hard label,

    L^{Cal} = CE(y^A, y~^{A+}) + CE(y^B, y~^{B+})                              (Eq. (9))

"We fix MTL model parameters when optimizing L^{Cal}": the teacher's logit
enters behind `stop_gradient`.  Algorithm 1 then updates two disjoint
variable groups in turn, each by its own loss and learning rate: the model's
Theta by L^{Model} (rate gamma_1), the calibration's Omega = {P, Q} by L^{Cal}
(rate gamma_2).  `split_bilevel_variables` makes the two groups; one
optimizer per group applies them within one `train_step`, so stock `fit`
(and ParameterServerStrategy's scheduling) still drives the loop.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.distill.losses import logloss

THETA, OMEGA = "theta", "omega"  # Algorithm 1's names of the model's and the calibration's parameters


@keras.utils.register_keras_serializable(package="pfd_tf")
class PlattScaling(keras.layers.Layer):
    """`[B]` -> `[B]`: r~ = P r + Q (Eq. (8)), one scalar P (initially 1) and Q (initially 0) per layer,
    i.e. per task."""

    def build(self, input_shape):
        self.p = self.add_weight(name="p", shape=[], initializer="ones")
        self.q = self.add_weight(name="q", shape=[], initializer="zeros")
        super().build(input_shape)

    def call(self, logits: tf.Tensor) -> tf.Tensor:
        return self.p * logits + self.q


def calibration_loss(labels: tf.Tensor, teacher_logits: tf.Tensor, platt: PlattScaling) -> tf.Tensor:
    """One task's CE(y, sigmoid(P sg(r) + Q)) of Eq. (9): moves P and Q, never the model (`stop_gradient`)."""
    return logloss(labels, platt(tf.stop_gradient(teacher_logits)))


@dataclasses.dataclass(frozen=True)
class BilevelGroups:
    """Algorithm 1's two disjoint variable groups: `theta` (the MTL model) and `omega` (P, Q)."""

    theta: Sequence[tf.Variable]
    omega: Sequence[tf.Variable]


def split_bilevel_variables(trainable_variables: Iterable[tf.Variable],
                            calibration: Mapping[str, PlattScaling] | Sequence[PlattScaling]) -> BilevelGroups:
    """Splits a model's trainable variables into Omega (the calibration layers' P and Q) and Theta (the rest),
    each in the order of `trainable_variables`.

    Raises ValueError when a calibration variable is not among
    `trainable_variables` (a calibration layer not tracked by the model, or
    not built yet: its optimizer would silently update nothing).
    """
    # A Keras model's dict attribute is a tracking wrapper, not a `Mapping` instance: look for `values`.
    layers = list(calibration.values()) if hasattr(calibration, "values") else list(calibration)
    omega_refs = {variable.ref() for layer in layers for variable in layer.trainable_variables}
    if any(not layer.built for layer in layers):
        raise ValueError("a calibration layer is not built yet; run the model once before splitting")
    variables = list(trainable_variables)
    theta = [v for v in variables if v.ref() not in omega_refs]
    omega = [v for v in variables if v.ref() in omega_refs]
    if len(omega) != len(omega_refs):
        raise ValueError(f"{len(omega_refs) - len(omega)} calibration variable(s) are not among the model's "
                         "trainable variables; track the calibration layers as attributes of the model")
    return BilevelGroups(theta, omega)
