"""MMoE: multi-gate mixture of experts (Ma et al., KDD 2018, Section 4.2).

n experts f_i (MLPs over the shared input x) are shared by all tasks; each
task k has its own gate g^k(x) = softmax(W_gk x) (Eq. (5)) and reads the
mixture f^k(x) = sum_i g^k(x)_i f_i(x) (Eq. (4)), on which its tower h^k
gives y_k = h^k(f^k(x)) (Eq. (3); the towers are `towers.TaskTowers`).

So a task's loss moves its gate, every expert and its tower, never another
task's gate or tower (`tests/multitask/test_multitask_backbones.py`).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.multitask.experts import Backbone, SoftmaxGate, mix


@keras.utils.register_keras_serializable(package="pfd_tf")
class MMoE(Backbone):
    """`[B, d]` -> `{task: [B, expert_units[-1]]}`; with `with_gates`, also `{"gate_<task>": [B, experts]}`."""

    def __init__(self, tasks: Sequence[str], experts: int = 4, expert_units: Sequence[int] = (64,), **kwargs):
        super().__init__(tasks, **kwargs)
        self.num_experts = int(experts)
        if self.num_experts < 1:
            raise ValueError(f"MMoE needs at least one expert, got {experts}")
        self.expert_units = tuple(int(u) for u in expert_units)
        self.experts = [self.expert(self.expert_units, name=f"expert_{i}") for i in range(self.num_experts)]
        self.gates = {task: SoftmaxGate(self.num_experts, name=f"gate_{task}") for task in self.tasks}

    def call(self, inputs: tf.Tensor, training: bool | None = None, with_gates: bool = False):
        outputs = [expert(inputs, training=training) for expert in self.experts]
        gates = {task: self.gates[task](inputs) for task in self.tasks}
        representations = {task: mix(gates[task], outputs) for task in self.tasks}
        if with_gates:
            return representations, {f"gate_{task}": weights for task, weights in gates.items()}
        return representations

    def get_config(self):
        return {**super().get_config(), "experts": self.num_experts, "expert_units": list(self.expert_units)}
