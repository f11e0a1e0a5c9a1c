"""The DNN part every deep model of the zoo has beside its interaction part.

phi_DNN(x) of Eq. (1)-(4) of Zhu et al. 2020: hidden layers over the fields,
each Dense -> `model.normalization` -> LeakyReLU (-> Dropout), built by
`pfd_tf.models.towers.hidden_layers` as the DNN ranker's tower is.  The part
returns its last hidden output and leaves the logit to the model: a
sum-of-logits model (Wide&Deep, DeepFM, xDeepFM, FiBiNet) puts a Dense(1) on
it, DCN and AutoInt+ concatenate it with their interaction output first.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import ModelConfig, Normalization
from pfd_tf.models.towers import hidden_layers


@keras.utils.register_keras_serializable(package="pfd_tf")
class DeepPart(keras.layers.Layer):
    """`(output, hidden)`: the last hidden layer's output and `deep_i` -> `[B, units[i]]`.

    `deep_i` is what hidden layer i hands the next one (after the LeakyReLU,
    and after the dropout when there is one), as `MLPTower.forward` names
    them.  With no hidden layers the output is the input itself.
    """

    def __init__(self, units: Sequence[int], normalization: Normalization | str = Normalization.NONE,
                 batch_norm_momentum: float = 0.99, leaky_relu_alpha: float = 0.01, dropout: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.normalization = Normalization(normalization)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.leaky_relu_alpha = float(leaky_relu_alpha)
        self.dropout = float(dropout)
        self.hidden = hidden_layers(self.units, self.normalization, self.batch_norm_momentum,
                                    self.leaky_relu_alpha, self.dropout)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        block_end = keras.layers.Dropout if self.dropout else keras.layers.LeakyReLU
        x, hidden = inputs, {}
        for layer in self.hidden:
            x = layer(x, training=training)
            if isinstance(layer, block_end):
                hidden[f"deep_{len(hidden)}"] = x
        return x, hidden

    def get_config(self):
        return {
            **super().get_config(),
            "units": list(self.units),
            "normalization": self.normalization.value,
            "batch_norm_momentum": self.batch_norm_momentum,
            "leaky_relu_alpha": self.leaky_relu_alpha,
            "dropout": self.dropout,
        }


def deep_part(model: ModelConfig, tower: Sequence[int], name: str = "deep") -> DeepPart:
    """The DNN part of widths `tower` with `model`'s normalization, LeakyReLU slope and dropout."""
    return DeepPart(tower, model.normalization, model.batch_norm_momentum, model.leaky_relu_alpha, model.dropout,
                    name=name)
