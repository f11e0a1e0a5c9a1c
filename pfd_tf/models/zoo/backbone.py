"""The multi-task backbones as networks of the zoo: Shared-Bottom, MMoE, PLE and Cross-Stitch with a tower per task.

`model: shared_bottom | mmoe | ple | cross_stitch` makes a teacher or a
student whose fields' concatenated vector `[B, d]` (the shared feature
embeddings) feeds a backbone of `pfd_tf.multitask` (one representation per
task) and `towers.TaskTowers` (one `MLPTower` of widths `tower` per task of
`tasks:`): y_k = h^k(f^k(x)), Eq. (3) of Ma et al. 2018 (MMoE) and Eq. (1)
of Tang et al. 2020 (PLE).  Each task's logit is its own tower's, so the
network returns every task's logits (`NetworkOutput.by_task`) and gets no
`pfd_tf.models.heads.TaskHeads` over `final`.  The served task (the first)
is the network's `logits`; its tower's hidden outputs are the network's
`deep_i` and `final` (what a hint attaches to, Eq. (9) of Zhu et al. 2020),
its backbone output `representation`.

A task's loss reaches only its own tower (and its gate, for MMoE and PLE),
never another task's tower (`tests/test_backbone_networks.py`).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body
from pfd_tf.names import DEFAULT_TASK
from pfd_tf.multitask.cross_stitch import CrossStitch
from pfd_tf.multitask.mmoe import MMoE
from pfd_tf.multitask.ple import PLE
from pfd_tf.multitask.shared_bottom import SharedBottom
from pfd_tf.multitask.towers import MultiTaskNetwork, TaskTowers

# Misra et al.'s (0.9, 0.1) start for two tasks: alpha's diagonal.
STITCH_SELF_WEIGHT = 0.9


class BackboneBody(Body):
    """Backbone + one tower per task; `logits` the served (first) task's, `by_task` every task's."""

    gives_tasks = True  # `pfd_tf.models.heads.add_task_heads` adds no heads over `final`

    def __init__(self, network: MultiTaskNetwork, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.served = network.tasks[0]

    @property
    def logit(self):
        """The served task's logit layer (the Dense(1) its `final` feeds)."""
        return self.network.towers.towers[self.served].logit

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        out = self.network.forward(fields.vector(), training=training)
        prefix = f"{self.served}/"
        hidden = {name[len(prefix):]: value for name, value in out.hidden.items() if name.startswith(prefix)}
        # The other tasks' towers under their own names (`<task>/final`: where CrossDistil's augmented task of
        # that task attaches).
        hidden.update({name: value for name, value in out.hidden.items()
                       if not name.startswith(prefix) and name.endswith("/final")})
        return NetworkOutput(out.logits[self.served], hidden, dict(out.logits))


def _mlp_options(model: ModelConfig) -> dict:
    return {"leaky_relu_alpha": model.leaky_relu_alpha, "dropout": model.dropout,
            "normalization": model.normalization, "batch_norm_momentum": model.batch_norm_momentum}


def _body(backbone, tower: Sequence[int], tasks: Sequence[str], model: ModelConfig, name: str) -> BackboneBody:
    towers = TaskTowers(tasks, tower, name="towers", **_mlp_options(model))
    return BackboneBody(MultiTaskNetwork(backbone, towers, name="backbone"), name=name)


def _tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """The towers' tasks: the config's, or the one task `data.label` stands for."""
    return tuple(tasks) or (DEFAULT_TASK,)


def make_shared_bottom(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "shared_bottom",
                       tasks: Sequence[str] = ()) -> BackboneBody:
    tasks = _tasks(tasks)
    backbone = SharedBottom(tasks, network.expert_units, name="shared_bottom", **_mlp_options(model))
    return _body(backbone, tower, tasks, model, name)


def make_mmoe(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "mmoe",
              tasks: Sequence[str] = ()) -> BackboneBody:
    tasks = _tasks(tasks)
    backbone = MMoE(tasks, network.experts, network.expert_units, name="mmoe", **_mlp_options(model))
    return _body(backbone, tower, tasks, model, name)


def make_ple(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "ple",
             tasks: Sequence[str] = ()) -> BackboneBody:
    tasks = _tasks(tasks)
    backbone = PLE(tasks, network.levels, network.experts, network.shared_experts, network.expert_units, name="ple",
                   **_mlp_options(model))
    return _body(backbone, tower, tasks, model, name)


def make_cross_stitch(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "cross_stitch",
                      tasks: Sequence[str] = ()) -> BackboneBody:
    tasks = _tasks(tasks)
    backbone = CrossStitch(tasks, network.expert_units, STITCH_SELF_WEIGHT, name="cross_stitch",
                           **_mlp_options(model))
    return _body(backbone, tower, tasks, model, name)


__all__ = ["BackboneBody", "make_cross_stitch", "make_mmoe", "make_ple", "make_shared_bottom"]
