"""AutoInt's interacting layer (Song et al. 2019, Section 4.3): multi-head self-attention over the fields."""
from __future__ import annotations

from pfd_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="pfd_tf")
class InteractingLayer(keras.layers.Layer):
    """`[B, F, d]` -> `[B, F, heads * dim]`: each field attends over all fields, per head.

    Per head h (Eq. (5)-(9) of Song et al.):
        alpha^h_{m,k} = softmax_k(<W^h_Q e_m, W^h_K e_k>),
        e~^h_m = sum_k alpha^h_{m,k} W^h_V e_k,
        e^Res_m = ReLU([e~^1_m; ...; e~^H_m] + W_Res e_m),
    the W_Res projection (the residual) only when `residual`; without it the
    ReLU follows the concatenated heads.  Scores are not scaled by
    sqrt(dim), as in the paper and DeepCTR's default.  The query, key, value
    and residual kernels are `[d, heads * dim]`, head h in columns
    h dim .. (h + 1) dim.
    """

    def __init__(self, heads: int = 2, dim: int = 16, residual: bool = True, **kwargs):
        super().__init__(**kwargs)
        if heads < 1 or dim < 1:
            raise ValueError(f"InteractingLayer needs heads >= 1 and dim >= 1, got heads={heads}, dim={dim}")
        self.heads = int(heads)
        self.dim = int(dim)
        self.residual = bool(residual)

    def build(self, input_shape):
        width = int(input_shape[-1])

        def kernel(name):
            return self.add_weight(name=name, shape=[width, self.heads * self.dim], initializer="glorot_uniform")

        self.query, self.key, self.value = kernel("query"), kernel("key"), kernel("value")
        self.residual_kernel = kernel("residual") if self.residual else None
        super().build(input_shape)

    def _heads(self, stack: tf.Tensor, kernel: tf.Variable) -> tf.Tensor:
        """`[B, F, d]` -> `[B, heads, F, dim]`."""
        projected = tf.einsum("bfd,dk->bfk", stack, kernel)
        return tf.transpose(tf.reshape(projected, [-1, stack.shape[1], self.heads, self.dim]), [0, 2, 1, 3])

    def call(self, stack: tf.Tensor) -> tf.Tensor:
        if stack.shape.rank != 3:
            raise ValueError(f"InteractingLayer expects [batch, fields, dim], got shape {stack.shape}")
        queries, keys, values = (self._heads(stack, w) for w in (self.query, self.key, self.value))
        weights = tf.nn.softmax(tf.matmul(queries, keys, transpose_b=True), axis=-1)  # [B, heads, F, F]
        attended = tf.matmul(weights, values)  # [B, heads, F, dim]
        output = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [-1, stack.shape[1], self.heads * self.dim])
        if self.residual:
            output += tf.einsum("bfd,dk->bfk", stack, self.residual_kernel)
        return tf.nn.relu(output)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], input_shape[1], self.heads * self.dim])

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "dim": self.dim, "residual": self.residual}
