"""FiBiNET's Squeeze-Excitation network (Huang et al. 2019, Section 3.3): a learned weight per field."""
from __future__ import annotations

from pfd_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="pfd_tf")
class SENET(keras.layers.Layer):
    """`[B, F, d]` -> `[B, F, d]`: each field's embedding scaled by its importance for the row.

    Eq. (1)-(3) of Huang et al.:
        z_i = mean_t(e_i^(t))                      squeeze,   Z in R^F
        A = ReLU(W_2 ReLU(W_1 Z))                  excitation, W_1: F -> max(1, F // reduction)
        v_i = a_i e_i                              re-weight
    ReLU for both excitation layers and no biases, as DeepCTR's `SENETLayer`.
    """

    def __init__(self, reduction: int = 3, **kwargs):
        super().__init__(**kwargs)
        if reduction < 1:
            raise ValueError(f"SENET's reduction ratio must be >= 1, got {reduction}")
        self.reduction = int(reduction)

    def build(self, input_shape):
        fields = int(input_shape[1])
        squeezed = max(1, fields // self.reduction)
        self.squeeze_kernel = self.add_weight(name="squeeze_kernel", shape=[fields, squeezed],
                                              initializer="glorot_normal")
        self.excite_kernel = self.add_weight(name="excite_kernel", shape=[squeezed, fields],
                                             initializer="glorot_normal")
        super().build(input_shape)

    def call(self, stack: tf.Tensor) -> tf.Tensor:
        if stack.shape.rank != 3:
            raise ValueError(f"SENET expects [batch, fields, dim], got shape {stack.shape}")
        summary = tf.reduce_mean(stack, axis=-1)
        weights = tf.nn.relu(tf.nn.relu(summary @ self.squeeze_kernel) @ self.excite_kernel)
        return stack * weights[:, :, None]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}
