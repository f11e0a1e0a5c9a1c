"""CrossDistil inside the distiller: the served student's augmented tasks, their calibration, and its losses.

"Cross-Task Knowledge Distillation in Multi-Task Recommendation" (AAAI
2022), configured by `distill.crossdistil` (`pfd_tf.config.crossdistil`).
The teachers are the student's own augmented ranking tasks A+ and B+
(Section 3.1): here a Dense(1) head each over the student's `final`, the
hidden output its task heads read (`pfd_tf.models.heads`), so they share the
student's body as the paper's extra towers share the MTL backbone.  Per step
(Algorithm 1; the maths is `pfd_tf.multitask.crossdistil`):

    L^{Model} = sum over the other tasks t of L_t
                + sum over t in (A, B) of ranking_weight L^{t+} (Eq. (4)) + L^{t-Stu} (Eq. (7))
    L^{Cal}   = CE(y^A, sigmoid(P^A sg(r^{A+}) + Q^A)) + (B likewise)           (Eq. (9))

with L^{t-KD} of Eq. (6) read from the calibrated (Eq. (8)), error-corrected
(Eq. (10)) teacher logit behind `stop_gradient`.  The student's Theta (its
body, heads and the augmented heads) moves by L^{Model} through the run's
optimizer; Omega = {P, Q} by L^{Cal} through `calibration_optimizer` (SGD at
gamma_2), both within the one `train_step` (`Distiller.train_step`), so stock
`fit` and ParameterServerStrategy drive the bi-level loop.  L^{Cal} is taken
at the step's Theta, before Theta's update (Algorithm 1 line 13 recomputes it
after; the difference is one step's lag, which saves a second forward pass).

The heads and P, Q sit on the distiller (`model/crossdistil` in
checkpoints), not in the student network: the export never holds them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config.crossdistil import CrossDistilConfig
from pfd_tf.multitask.calibration import PlattScaling, split_bilevel_variables
from pfd_tf.multitask.crossdistil import CrossDistilParams, TaskParams, crossdistil_losses
from pfd_tf.multitask.quadruplets import sample_quadruplets, step_seed

# The losses a step logs, by task (`loss_<task>_ranking`, ...), beside `loss_crossdistil` and `loss_calibration`.
PER_TASK = ("ranking", "distill", "calibration")


def augmented_key(who: str, task: str) -> str:
    """The key of network `who`'s augmented task `task`+ logits (and its AUC: `<key>` with `_auc`)."""
    return f"{who}_{task}_augmented"


class CrossDistilPart(keras.layers.Layer):
    """The augmented heads `augmented_<task>` and Platt layers `platt_<task>` of the two tasks, and the losses."""

    def __init__(self, tasks: Sequence[str], section: CrossDistilConfig, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.task_names = tuple(tasks)
        task = TaskParams(section.beta1, section.beta2, section.alpha, section.margin)
        self.params = CrossDistilParams(self.task_names, {name: task for name in self.task_names},
                                        section.temperature, section.ranking_weight, section.calibrate,
                                        section.correct)
        self.samples = int(section.samples) or None
        self.seed = int(seed)
        self.augmented = {name: keras.layers.Dense(1, name=f"augmented_{name}") for name in self.task_names}
        self.platt = {name: PlattScaling(name=f"platt_{name}") for name in self.task_names}

    def call(self, finals: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """{task: `[B, width]`, the hidden output its augmented head reads} -> {task: `[B]` logits of its
        augmented task}."""
        return {name: tf.squeeze(head(finals[name]), axis=-1) for name, head in self.augmented.items()}

    def build_weights(self, width: int) -> None:
        """Creates the heads' and P, Q's weights (the split of `groups` needs them built)."""
        logits = self({name: tf.zeros([1, width]) for name in self.task_names})
        for name, platt in self.platt.items():
            platt(logits[name])

    def groups(self, trainable_variables) -> "tuple[list, list]":
        """(Theta, Omega) of Algorithm 1 among `trainable_variables` (`split_bilevel_variables`)."""
        groups = split_bilevel_variables(trainable_variables, self.platt)
        return list(groups.theta), list(groups.omega)

    def losses(self, finals: Mapping[str, tf.Tensor], student_logits: Mapping[str, tf.Tensor], labels: Mapping[str, tf.Tensor],
               step: tf.Tensor, who: str, out: dict) -> tuple[tf.Tensor, tf.Tensor]:
        """(the two tasks' part of L^{Model}, L^{Cal}) of one batch; logs each term and the augmented logits in
        `out`."""
        teacher = self(finals)
        a, b = self.task_names
        quadruplets = sample_quadruplets(labels[a], labels[b], step_seed(self.seed, step), self.samples)
        losses = crossdistil_losses(labels, student_logits, teacher, self.platt, quadruplets, self.params)
        for name in self.task_names:
            out[f"{augmented_key(who, name)}_logits"] = teacher[name]
            for part in PER_TASK:
                out[f"loss_{name}_{part}"] = losses[f"loss_{name}_{part}"]
        out["loss_crossdistil"] = losses["loss_model"]
        out["loss_calibration"] = losses["loss_calibration"]
        return losses["loss_model"], losses["loss_calibration"]

    def log_keys(self) -> list[str]:
        return ["loss_crossdistil", "loss_calibration"] + [f"loss_{name}_{part}" for name in self.task_names
                                                           for part in PER_TASK]


def calibration_optimizer(section: CrossDistilConfig) -> keras.optimizers.Optimizer:
    """Omega's own optimizer: SGD at gamma_2 (`calibration_learning_rate`), Algorithm 1 line 13."""
    return keras.optimizers.SGD(learning_rate=section.calibration_learning_rate, name="calibration_sgd")
