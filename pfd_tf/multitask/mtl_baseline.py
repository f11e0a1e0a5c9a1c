"""The PFD paper's MTL baseline (Section 5.3): predict the privileged features instead of distilling them.

"We adopt the hard parameter sharing version of MTL [Ruder 2017], where all
tasks share first hidden layer and independently predict each task with
2-layers' MLP.  We adopt the mean squared error for the auxiliary continuous
regression tasks, e.g. predicting the dwell time, and the log-loss for the
auxiliary binary prediction tasks, e.g. predicting whether viewing the user
comments or not.  The hyper-parameters are chosen empirically from {0.01,
0.02, 0.05, 0.1, 0.2, 0.5, 1, 2} with the principle of keeping all
auxiliary losses balanced."  With the paper's 3-layer tower (512, 256, 128)
that is a `SharedBottom` of one 512-wide layer and a (256, 128) tower per
task (`build_mtl_baseline`).

The loss (`mtl_baseline_losses`) is the main task's log loss plus, per
privileged feature, its weight times its loss: MSE of the tower's output
against the standardized target (y - center) / scale for a regression task,
log loss for a binary one.  Standardizing (e.g. the log dwell time's mean
and std on the train days) keeps each MSE near 1 at the start, which is
what "balanced" weights need.  Only the main task is served.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Mapping, Sequence

from pfd_tf._keras import tf
from pfd_tf.distill.losses import logloss
from pfd_tf.multitask.shared_bottom import SharedBottom
from pfd_tf.multitask.towers import MultiTaskNetwork, TaskTowers

PAPER_AUXILIARY_WEIGHTS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
"""The grid Section 5.3 chooses each auxiliary weight from."""


class AuxiliaryKind(str, enum.Enum):
    REGRESSION = "regression"  # a continuous privileged feature (dwell time): MSE
    BINARY = "binary"  # a 0/1 privileged feature (viewed the comments): log loss


@dataclasses.dataclass(frozen=True)
class AuxiliaryTask:
    """One privileged feature predicted as an auxiliary task.

    `name`: the task (its tower `tower_<name>`, its loss `loss_<name>`);
    `weight`: its weight in the loss; `center`, `scale`: a regression
    target's standardization, (y - center) / scale (ignored for binary).
    """

    name: str
    kind: AuxiliaryKind = AuxiliaryKind.REGRESSION
    weight: float = 1.0
    center: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "kind", AuxiliaryKind(self.kind))
        if self.weight < 0:
            raise ValueError(f"auxiliary task {self.name!r}: weight must be >= 0, got {self.weight}")
        if not self.scale > 0:
            raise ValueError(f"auxiliary task {self.name!r}: scale must be > 0, got {self.scale}")

    def loss(self, target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        """MSE against the standardized target (regression) or log loss (binary); a mean over the batch."""
        target = tf.cast(target, output.dtype)
        if self.kind is AuxiliaryKind.BINARY:
            return logloss(target, output)
        return tf.reduce_mean(tf.square(output - (target - self.center) / self.scale))


def build_mtl_baseline(main_task: str, auxiliary: Sequence[AuxiliaryTask], shared_units: Sequence[int] = (512,),
                       head_units: Sequence[int] = (256, 128), name: str = "mtl_baseline",
                       **mlp_options) -> MultiTaskNetwork:
    """The hard-sharing network: `shared_units` shared by every task, a `head_units` MLP tower per task.

    `mlp_options` (`normalization`, `leaky_relu_alpha`, `dropout`,
    `batch_norm_momentum`) go to the bottom and every tower alike.
    """
    tasks = [main_task] + [task.name for task in auxiliary]
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"the main and auxiliary tasks need distinct names, got {tasks}")
    return MultiTaskNetwork(SharedBottom(tasks, shared_units, name="shared_bottom", **mlp_options),
                            TaskTowers(tasks, head_units, name="heads", **mlp_options), name=name)


def mtl_baseline_losses(labels: Mapping[str, tf.Tensor], outputs: Mapping[str, tf.Tensor], main_task: str,
                        auxiliary: Sequence[AuxiliaryTask]) -> dict[str, tf.Tensor]:
    """`loss_<task>` for the main task (log loss) and each auxiliary one (unweighted), and
    `loss` = loss_<main> + sum_a weight_a loss_<a>.

    `labels`: task -> targets `[B]` (the main label, each privileged feature's
    raw value); `outputs`: task -> the network's outputs `[B]`.
    """
    losses = {f"loss_{main_task}": logloss(labels[main_task], outputs[main_task])}
    total = losses[f"loss_{main_task}"]
    for task in auxiliary:
        losses[f"loss_{task.name}"] = task.loss(labels[task.name], outputs[task.name])
        total = total + task.weight * losses[f"loss_{task.name}"]
    losses["loss"] = total
    return losses
