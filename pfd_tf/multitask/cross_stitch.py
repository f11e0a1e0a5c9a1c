"""Cross-Stitch networks (Misra et al., CVPR 2016): one column per task, mixed after every layer.

Each task k has its own MLP column.  After hidden layer l, a cross-stitch
unit replaces every task's activations by a learned linear combination of
all tasks' activations at that layer, x~^l_k = sum_m alpha^l_km x^l_m
(Eq. (1) of Misra et al., there for two tasks; here T tasks with one scalar
per task pair and layer), and the next layer of column k reads x~^l_k.
alpha starts at `self_weight` on the diagonal and shares the rest equally
off it (the paper's (0.9, 0.1) for two tasks), so each row sums to 1.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.multitask.experts import Backbone


@keras.utils.register_keras_serializable(package="pfd_tf")
class CrossStitchUnit(keras.layers.Layer):
    """`[B, T, h]` -> `[B, T, h]`: out[:, k] = sum_m alpha[k, m] in[:, m]."""

    def __init__(self, self_weight: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.self_weight = float(self_weight)

    def build(self, input_shape):
        tasks = int(input_shape[1])
        off = (1.0 - self.self_weight) / (tasks - 1) if tasks > 1 else 0.0
        initial = tf.eye(tasks) * (self.self_weight - off) + off
        self.alpha = self.add_weight(name="alpha", shape=[tasks, tasks],
                                     initializer=lambda shape, dtype=None: tf.cast(initial, dtype or tf.float32))
        super().build(input_shape)

    def call(self, stack: tf.Tensor) -> tf.Tensor:
        return tf.einsum("km,bmh->bkh", self.alpha, stack)

    def get_config(self):
        return {**super().get_config(), "self_weight": self.self_weight}


@keras.utils.register_keras_serializable(package="pfd_tf")
class CrossStitch(Backbone):
    """`[B, d]` -> `{task: [B, units[-1]]}`: one column of `units` per task, a stitch after each layer.

    With `with_gates`, also `{"stitch_<l>": alpha^l}` (`[T, T]`, rows in task order).
    """

    def __init__(self, tasks: Sequence[str], units: Sequence[int] = (64,), self_weight: float = 0.9, **kwargs):
        super().__init__(tasks, **kwargs)
        self.units = tuple(int(u) for u in units)
        if not self.units:
            raise ValueError("Cross-Stitch needs at least one hidden layer (units)")
        self.self_weight = float(self_weight)
        self.columns = {task: [self.expert([width], f"{task}_layer_{l}") for l, width in enumerate(self.units)]
                        for task in self.tasks}
        self.stitches = [CrossStitchUnit(self.self_weight, name=f"stitch_{l}") for l in range(len(self.units))]

    def call(self, inputs: tf.Tensor, training: bool | None = None, with_gates: bool = False):
        xs = [inputs] * len(self.tasks)
        for l, stitch in enumerate(self.stitches):
            layer_outputs = [self.columns[task][l](x, training=training) for task, x in zip(self.tasks, xs)]
            xs = tf.unstack(stitch(tf.stack(layer_outputs, axis=1)), num=len(self.tasks), axis=1)
        representations = dict(zip(self.tasks, xs))
        if with_gates:
            return representations, {f"stitch_{l}": stitch.alpha for l, stitch in enumerate(self.stitches)}
        return representations

    def get_config(self):
        return {**super().get_config(), "units": list(self.units), "self_weight": self.self_weight}
