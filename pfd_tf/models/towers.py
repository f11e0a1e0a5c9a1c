"""MLP towers: Dense -> BatchNorm -> LeakyReLU per hidden layer, then one logit.

Section 5.1 of the PFD paper: "We use LeakyReLU as the activation and insert
batch normalization before it."  The tower returns logits of shape [batch];
the sigmoid is applied by the losses and at export.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="pfd_tf")
class DenseBatchNorm(keras.layers.BatchNormalization):
    """Batch normalization of `[batch, units]` activations by TensorFlow's fused kernel.

    Keras runs a 2-D batch normalization as separate ops (moments, scale,
    shift, and as many again backward), which profiled at a third of a
    baseline step on CPU (`benchmarks/overhead.py --profile`); seen as
    `[batch, 1, 1, units]`, the same normalization is one FusedBatchNormV3 op
    forward and one backward.  Same variables, same training-mode output.
    """

    def __init__(self, **kwargs):
        kwargs.pop("fused", None)
        super().__init__(fused=True, **kwargs)

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        super().build(tf.TensorShape([input_shape[0], 1, 1, input_shape[-1]]))
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: input_shape[-1]})

    def call(self, inputs, training=None):
        x = tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        return tf.reshape(super().call(x, training=training), tf.shape(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape


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
            self.hidden.append(DenseBatchNorm(name=f"batch_norm_{i}"))
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
