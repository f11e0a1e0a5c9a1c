"""Shared-Bottom (Caruana 1997): one MLP below every task, the tasks part only in their towers.

Hard parameter sharing: every task reads the same bottom representation
f(x), and its own tower h^k (`towers.TaskTowers`) gives y_k = h^k(f(x))
(Eq. (1) of Ma et al. 2018, the baseline MMoE starts from).  The PFD
paper's MTL baseline (Section 5.3) is this with a one-layer bottom
(`pfd_tf.datasets.mtl_baseline_config`).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.multitask.experts import Backbone


@keras.utils.register_keras_serializable(package="pfd_tf")
class SharedBottom(Backbone):
    """`[B, d]` -> `{task: [B, units[-1]]}`, the same tensor for every task."""

    def __init__(self, tasks: Sequence[str], units: Sequence[int] = (256,), **kwargs):
        super().__init__(tasks, **kwargs)
        self.units = tuple(int(u) for u in units)
        self.bottom = self.expert(self.units, name="bottom")

    def call(self, inputs: tf.Tensor, training: bool | None = None, with_gates: bool = False):
        shared = self.bottom(inputs, training=training)
        representations = {task: shared for task in self.tasks}
        return (representations, {}) if with_gates else representations

    def get_config(self):
        return {**super().get_config(), "units": list(self.units)}
