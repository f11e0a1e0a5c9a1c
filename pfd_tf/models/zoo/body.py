"""What a zoo model is: a body that turns a network's `Fields` into its `NetworkOutput`.

A body holds the model's layers (its interaction part, its DNN part, its
logit layer) but no tables: those are handed in per step through `Fields`
(the step's `FeatureBank` and the tables `ZooNetwork` holds), so the
teacher and the student of a distiller can read the same tables.
"""
from __future__ import annotations

from pfd_tf._keras import keras, tf
from pfd_tf.models.network import Fields, NetworkOutput


class Body(keras.layers.Layer):
    """`call(fields, training) -> NetworkOutput`, with `logits` `[B]` and `hidden` holding `final`."""

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError("a zoo body is rebuilt from the pfd_tf config (pfd_tf.models.zoo.build_network)")


@keras.utils.register_keras_serializable(package="pfd_tf")
class Bias(keras.layers.Layer):
    """`[B]` -> `[B]`: adds one learned scalar, the global bias of the models without a logit Dense layer."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=[], initializer="zeros")
        super().build(input_shape)

    def call(self, logits: tf.Tensor) -> tf.Tensor:
        return logits + self.bias


def logit_layer(name: str = "logit", use_bias: bool = True) -> keras.layers.Dense:
    """The Dense(1) a model's logit (or one summand of it) comes from."""
    return keras.layers.Dense(1, use_bias=use_bias, name=name)


def squeeze(logit: tf.Tensor) -> tf.Tensor:
    """`[B, 1]` -> `[B]`."""
    return tf.squeeze(logit, axis=-1)


def flatten(stack: tf.Tensor) -> tf.Tensor:
    """`[B, F, d]` -> `[B, F d]`, field-major (field i's vector at columns i d .. (i + 1) d)."""
    return tf.reshape(stack, [-1, stack.shape[1] * stack.shape[2]])
