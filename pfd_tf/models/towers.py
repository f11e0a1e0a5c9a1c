"""MLP towers: Dense -> BatchNorm -> LeakyReLU per hidden layer, then one logit.

Section 5.1 of the PFD paper: "We use LeakyReLU as the activation and insert
batch normalization before it."  The tower returns logits of shape [batch];
the sigmoid is applied by the losses and at export.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="pfd_tf")
class MLPTower(keras.layers.Layer):
    def __init__(self, units: Sequence[int], leaky_relu_alpha: float = 0.01, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.leaky_relu_alpha = leaky_relu_alpha
        self.dropout = dropout
        self.hidden = []
        for i, width in enumerate(self.units):
            # No bias: the batch normalization that follows has its own offset.
            self.hidden.append(keras.layers.Dense(width, use_bias=False, name=f"dense_{i}"))
            self.hidden.append(keras.layers.BatchNormalization(name=f"batch_norm_{i}"))
            self.hidden.append(keras.layers.LeakyReLU(alpha=leaky_relu_alpha, name=f"leaky_relu_{i}"))
            if dropout:
                self.hidden.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
        self.logit = keras.layers.Dense(1, name="logit")

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = inputs
        for layer in self.hidden:
            x = layer(x, training=training)
        return tf.squeeze(self.logit(x), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "units": list(self.units),
            "leaky_relu_alpha": self.leaky_relu_alpha,
            "dropout": self.dropout,
        }
