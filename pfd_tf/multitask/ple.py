"""PLE: progressive layered extraction (Tang et al., RecSys 2020); one level is CGC.

Customized gate control (CGC, one extraction level): each task k has m_k
experts of its own and all tasks share m_s experts; task k's gate mixes only
its own and the shared ones, g^k(x) = w^k(x) S^k(x) with
w^k(x) = softmax(W^k_g x) and S^k(x) = [E_(k,1..m_k); E_(s,1..m_s)]
(Eq. (2)-(4)).  PLE stacks N levels: at level j, task k's experts and gate
read task k's output of level j-1, g^{k,j}(x) = w^{k,j}(g^{k,j-1}(x))
S^{k,j}(x) (Eq. (5)); the shared experts read the output of a shared gate
of level j-1, which mixes every expert of that level (the tasks' and the
shared ones).  The last level has no shared gate; task k's tower reads
g^{k,N}(x) (Eq. (6)).  At level 1 every input is x.

So at one level a task's loss moves its experts, the shared experts, its
gate and its tower; from two levels on it also reaches the other tasks'
lower-level experts through the shared gate, but never another task's
last-level experts, gate or tower (`tests/multitask/test_multitask_backbones.py`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.multitask.experts import Backbone, SoftmaxGate, mix

SHARED = "shared"  # the key of the shared path between levels


@keras.utils.register_keras_serializable(package="pfd_tf")
class PLE(Backbone):
    """`[B, d]` -> `{task: [B, expert_units[-1]]}`.

    `levels` extraction levels (1: CGC), each with `task_experts` experts per
    task and `shared_experts` shared ones.  With `with_gates`, also the gate
    weights: `"level<j>/gate_<task>"` (`[B, task_experts + shared_experts]`,
    own experts first) and `"level<j>/gate_shared"` (`[B, tasks * task_experts
    + shared_experts]`, the tasks' experts in task order, then the shared).
    """

    def __init__(self, tasks: Sequence[str], levels: int = 2, task_experts: int = 1, shared_experts: int = 1,
                 expert_units: Sequence[int] = (64,), **kwargs):
        super().__init__(tasks, **kwargs)
        if SHARED in self.tasks:
            raise ValueError(f"PLE reserves the name {SHARED!r}; rename that task")
        self.levels, self.task_experts, self.shared_experts = int(levels), int(task_experts), int(shared_experts)
        if self.levels < 1 or self.task_experts < 0 or self.shared_experts < 0:
            raise ValueError(f"PLE needs levels >= 1 and no negative expert count, got levels={levels}, "
                             f"task_experts={task_experts}, shared_experts={shared_experts}")
        if self.task_experts + self.shared_experts < 1:
            raise ValueError("PLE needs at least one expert per task gate (task_experts + shared_experts >= 1)")
        self.expert_units = tuple(int(u) for u in expert_units)
        self.extraction = [self._level(j) for j in range(self.levels)]

    def _level(self, j: int) -> dict:
        """Level j's experts and gates, by path (`SHARED` or a task), as tracked containers."""
        experts = {task: [self.expert(self.expert_units, f"level{j}_{task}_expert_{i}")
                          for i in range(self.task_experts)] for task in self.tasks}
        experts[SHARED] = [self.expert(self.expert_units, f"level{j}_shared_expert_{i}")
                           for i in range(self.shared_experts)]
        gates = {task: SoftmaxGate(self.task_experts + self.shared_experts, name=f"level{j}_gate_{task}")
                 for task in self.tasks}
        if j < self.levels - 1:  # a shared gate feeds the next level's shared experts
            gates[SHARED] = SoftmaxGate(len(self.tasks) * self.task_experts + self.shared_experts,
                                        name=f"level{j}_gate_shared")
        return {"experts": experts, "gates": gates}

    def call(self, inputs: tf.Tensor, training: bool | None = None, with_gates: bool = False):
        paths: Mapping[str, tf.Tensor] = {path: inputs for path in (*self.tasks, SHARED)}
        all_gates = {}
        for j, level in enumerate(self.extraction):
            outputs = {path: [expert(paths[path], training=training) for expert in experts]
                       for path, experts in level["experts"].items()}
            next_paths = {}
            for path, gate in level["gates"].items():
                weights = gate(paths[path])
                selected = ([o for task in self.tasks for o in outputs[task]] if path == SHARED
                            else outputs[path]) + outputs[SHARED]
                next_paths[path] = mix(weights, selected)
                all_gates[f"level{j}/gate_{path}"] = weights
            paths = next_paths
        representations = {task: paths[task] for task in self.tasks}
        return (representations, all_gates) if with_gates else representations

    def get_config(self):
        return {**super().get_config(), "levels": self.levels, "task_experts": self.task_experts,
                "shared_experts": self.shared_experts, "expert_units": list(self.expert_units)}
