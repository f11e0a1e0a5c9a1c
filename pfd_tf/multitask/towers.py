"""Task towers over a multi-task backbone, and the network that joins them.

`TaskTowers` puts one `pfd_tf.models.towers.MLPTower` on each task's
representation: y_k = h^k(f^k(x)) (Eq. (3) of Ma et al. 2018 (MMoE),
Eq. (1) of Tang et al. 2020 (PLE)).  A tower's output is a logit for a
binary task, the predicted value for a regression task (the PFD paper's
MTL baseline, Section 5.3): its logit layer is linear either way.

`MultiTaskNetwork` is backbone + towers over the shared feature vector
`[B, d]` (a network's `Fields.vector()`); `call` returns the logits by task,
`forward` a `MultiTaskOutput` with the named hidden outputs a cross-task
term or a hint can attach to.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import Normalization
from pfd_tf.models.towers import MLPTower


@dataclasses.dataclass(frozen=True)
class MultiTaskOutput:
    """`logits`: task -> `[B]`; `hidden`: `"<task>/<name>"` -> `[B, width]`.

    Per task: `<task>/representation` (the backbone's output, the tower's
    input), the tower's `<task>/deep_<i>` and `<task>/final` (the input of its
    logit layer), as `MLPTower.forward` names them; plus `gates/<name>`, the
    backbone's gate weights (MMoE, PLE) or stitches (Cross-Stitch).
    """

    logits: Mapping[str, tf.Tensor]
    hidden: Mapping[str, tf.Tensor]


@keras.utils.register_keras_serializable(package="pfd_tf")
class TaskTowers(keras.layers.Layer):
    """`{task: [B, h]}` -> `{task: [B]}`: one `MLPTower(units)` per task, named `tower_<task>`.

    `sources` maps a tower's task to the representation it reads (default:
    its own task's).  CrossDistil's augmented task A+ is a second tower on
    A's representation: `sources={"a_aug": "a"}`.
    """

    def __init__(self, tasks: Sequence[str], units: Sequence[int] = (), leaky_relu_alpha: float = 0.01,
                 dropout: float = 0.0, normalization: Normalization | str = Normalization.BATCH,
                 batch_norm_momentum: float = 0.99, sources: Mapping[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.tasks = tuple(str(t) for t in tasks)
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"task towers need distinct task names, got {list(self.tasks)}")
        unknown = sorted(set(sources or {}) - set(self.tasks))
        if unknown:
            raise ValueError(f"sources for task(s) {unknown} without a tower (the towers: {list(self.tasks)})")
        self.sources = {task: str((sources or {}).get(task, task)) for task in self.tasks}
        self.units = tuple(int(u) for u in units)
        self.leaky_relu_alpha, self.dropout = float(leaky_relu_alpha), float(dropout)
        self.normalization = Normalization(normalization)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.towers = {task: MLPTower(self.units, self.leaky_relu_alpha, self.dropout, self.normalization,
                                      self.batch_norm_momentum, name=f"tower_{task}") for task in self.tasks}

    def call(self, representations: Mapping[str, tf.Tensor], training: bool | None = None,
             with_hidden: bool = False):
        """Logits by task; with `with_hidden`, (logits, {task: the tower's hidden outputs})."""
        missing = sorted({source for source in self.sources.values() if source not in representations})
        if missing:
            raise ValueError(f"no representation for task(s) {missing}; the backbone gave {sorted(representations)}")
        outputs = {task: self.towers[task].forward(representations[self.sources[task]], training=training)
                   for task in self.tasks}
        logits = {task: out[0] for task, out in outputs.items()}
        return (logits, {task: out[1] for task, out in outputs.items()}) if with_hidden else logits

    def get_config(self):
        return {**super().get_config(), "tasks": list(self.tasks), "units": list(self.units),
                "leaky_relu_alpha": self.leaky_relu_alpha, "dropout": self.dropout,
                "normalization": self.normalization.value, "batch_norm_momentum": self.batch_norm_momentum,
                "sources": dict(self.sources)}


@keras.utils.register_keras_serializable(package="pfd_tf")
class MultiTaskNetwork(keras.layers.Layer):
    """`[B, d]` -> `{task: [B]}`: a backbone (`{task: [B, h]}`) with `TaskTowers` on top.

    Every tower's source must be one of the backbone's tasks.
    """

    def __init__(self, backbone: keras.layers.Layer, towers: TaskTowers, **kwargs):
        super().__init__(**kwargs)
        unknown = sorted(set(towers.sources.values()) - set(backbone.tasks))
        if unknown:
            raise ValueError(f"towers read task(s) {unknown} that the backbone does not give "
                             f"(its tasks: {list(backbone.tasks)})")
        self.backbone, self.towers = backbone, towers

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.towers.tasks

    def call(self, inputs: tf.Tensor, training: bool | None = None, with_hidden: bool = False):
        representations, gates = self.backbone(inputs, training=training, with_gates=True)
        logits, tower_hidden = self.towers(representations, training=training, with_hidden=True)
        if not with_hidden:
            return logits
        hidden = {f"{task}/representation": representations[self.towers.sources[task]] for task in self.tasks}
        hidden.update({f"{task}/{name}": value for task in self.tasks for name, value in tower_hidden[task].items()})
        hidden.update({f"gates/{name}": value for name, value in gates.items()})
        return MultiTaskOutput(logits, hidden)

    def forward(self, inputs: tf.Tensor, training: bool | None = None) -> MultiTaskOutput:
        """Logits by task and the hidden outputs (`MultiTaskOutput`), through `Layer.__call__`."""
        return self(inputs, training=training, with_hidden=True)

    def get_config(self):
        return {**super().get_config(), "backbone": keras.layers.serialize(self.backbone),
                "towers": keras.layers.serialize(self.towers)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = keras.layers.deserialize(config.pop("backbone"))
        towers = keras.layers.deserialize(config.pop("towers"))
        return cls(backbone, towers, **config)
