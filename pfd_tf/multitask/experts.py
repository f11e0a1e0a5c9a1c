"""What every multi-task backbone is made of: experts, softmax gates, and their mixture.

An expert is an MLP without a logit layer: `pfd_tf.models.towers.hidden_layers`,
the very Dense -> normalization -> LeakyReLU stack an `MLPTower` has below
its logit (an `MLPTower` itself would carry a Dense(1) no loss reads).  A
gate is the softmax of a linear map of its input, g(x) = softmax(W_g x),
Eq. (5) of Ma et al. 2018 (MMoE) and Eq. (3) of Tang et al. 2020 (PLE); no
bias, as there.  The mixture is sum_i g(x)_i f_i(x).

`Backbone` holds what the backbones share: the task names and the options of
their MLP parts, passed through to `hidden_layers`.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import Normalization
from pfd_tf.models.towers import hidden_layers


@keras.utils.register_keras_serializable(package="pfd_tf")
class Expert(keras.layers.Layer):
    """`[B, d]` -> `[B, units[-1]]`: the hidden layers of an MLP tower, no logit."""

    def __init__(self, units: Sequence[int], leaky_relu_alpha: float = 0.01, dropout: float = 0.0,
                 normalization: Normalization | str = Normalization.BATCH, batch_norm_momentum: float = 0.99,
                 **kwargs):
        super().__init__(**kwargs)
        if not units:
            raise ValueError("an expert needs at least one hidden layer (units)")
        self.units = tuple(int(u) for u in units)
        self.leaky_relu_alpha = float(leaky_relu_alpha)
        self.dropout = float(dropout)
        self.normalization = Normalization(normalization)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.hidden = hidden_layers(self.units, self.normalization, self.batch_norm_momentum,
                                    self.leaky_relu_alpha, self.dropout)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = inputs
        for layer in self.hidden:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "units": list(self.units), "leaky_relu_alpha": self.leaky_relu_alpha,
                "dropout": self.dropout, "normalization": self.normalization.value,
                "batch_norm_momentum": self.batch_norm_momentum}


@keras.utils.register_keras_serializable(package="pfd_tf")
class SoftmaxGate(keras.layers.Layer):
    """`[B, d]` -> `[B, experts]`: softmax(x W_g), each row summing to 1 (Eq. (5) of MMoE)."""

    def __init__(self, experts: int, **kwargs):
        super().__init__(**kwargs)
        if int(experts) < 1:
            raise ValueError(f"a gate needs at least one expert, got {experts}")
        self.experts = int(experts)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=[int(input_shape[-1]), self.experts],
                                      initializer="glorot_uniform")
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(tf.matmul(inputs, self.kernel), axis=-1)

    def get_config(self):
        return {**super().get_config(), "experts": self.experts}


def mix(weights: tf.Tensor, expert_outputs: Sequence[tf.Tensor]) -> tf.Tensor:
    """sum_i weights[:, i] * expert_outputs[i]: `[B, n]` and n times `[B, h]` -> `[B, h]`."""
    return tf.einsum("bn,bnh->bh", weights, tf.stack(list(expert_outputs), axis=1))


class Backbone(keras.layers.Layer):
    """A multi-task backbone: `call(inputs [B, d], training) -> {task: [B, h]}`, in the order of `tasks`.

    `call(..., with_gates=True)` also returns the gates' weights by name
    (`{}` for a backbone without gates), for tests and monitoring.
    Subclasses store their own arguments and add them to `get_config`.
    """

    def __init__(self, tasks: Sequence[str], leaky_relu_alpha: float = 0.01, dropout: float = 0.0,
                 normalization: Normalization | str = Normalization.BATCH, batch_norm_momentum: float = 0.99,
                 **kwargs):
        super().__init__(**kwargs)
        self.tasks = tuple(str(t) for t in tasks)
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"a multi-task backbone needs distinct task names, got {list(self.tasks)}")
        self.leaky_relu_alpha = float(leaky_relu_alpha)
        self.dropout = float(dropout)
        self.normalization = Normalization(normalization)
        self.batch_norm_momentum = float(batch_norm_momentum)

    def expert(self, units: Sequence[int], name: str) -> Expert:
        """An `Expert` with this backbone's MLP options."""
        return Expert(units, self.leaky_relu_alpha, self.dropout, self.normalization, self.batch_norm_momentum,
                      name=name)

    def get_config(self):
        return {**super().get_config(), "tasks": list(self.tasks), "leaky_relu_alpha": self.leaky_relu_alpha,
                "dropout": self.dropout, "normalization": self.normalization.value,
                "batch_norm_momentum": self.batch_norm_momentum}
