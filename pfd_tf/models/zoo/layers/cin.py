"""The Compressed Interaction Network of xDeepFM (Lian et al. 2018, Section 3.2): phi_CIN of Eq. (4) of Zhu et al."""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="pfd_tf")
class CIN(keras.layers.Layer):
    """`[B, m, d]` -> `[B, feature maps]`: explicit vector-wise interactions of bounded degree.

    Layer k makes H_k feature maps from the previous layer's H_{k-1} maps
    and the m input fields (Eq. (6) of Lian et al.):
        X^k_h = act(sum_{i<H_{k-1}} sum_{j<m} W^k_{j H_{k-1} + i, h} (X^{k-1}_i * X^0_j) + b^k_h),
    `*` the element-wise product, so `kernel_k` is `[m H_{k-1}, H_k]`, its
    row j H_{k-1} + i for the pair (input field j, previous map i), as
    DeepCTR lays out its filters.  Each map is sum-pooled over the embedding
    axis (Eq. (7)) and the pooled maps of every layer are concatenated.

    As in DeepCTR (and the authors' code), `split_half` sends the first half
    of each layer's maps (except the last layer's) on to the next layer and
    the second half to the output, so those layers must have an even size;
    the output then has sum(layer_sizes[:-1]) / 2 + layer_sizes[-1] maps.
    The activation is DeepCTR's default, ReLU.
    """

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu", split_half: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.layer_sizes = tuple(int(size) for size in layer_sizes)
        if not self.layer_sizes or min(self.layer_sizes) < 1:
            raise ValueError(f"CIN needs at least one layer of positive size, got {self.layer_sizes}")
        if split_half and any(size % 2 for size in self.layer_sizes[:-1]):
            raise ValueError(f"CIN with split_half needs even sizes for all but the last layer, got {self.layer_sizes}")
        self.activation = keras.activations.get(activation)
        self.split_half = bool(split_half)

    def build(self, input_shape):
        fields = int(input_shape[1])
        previous = fields
        self.kernels, self.biases = [], []
        for k, size in enumerate(self.layer_sizes):
            self.kernels.append(self.add_weight(name=f"kernel_{k}", shape=[fields * previous, size],
                                                initializer="glorot_uniform"))
            self.biases.append(self.add_weight(name=f"bias_{k}", shape=[size], initializer="zeros"))
            previous = size // 2 if self.split_half else size
        super().build(input_shape)

    def call(self, stack: tf.Tensor) -> tf.Tensor:
        if stack.shape.rank != 3:
            raise ValueError(f"CIN expects [batch, fields, dim], got shape {stack.shape}")
        fields, dim = stack.shape[1], stack.shape[2]
        hidden, pooled = stack, []
        for k, size in enumerate(self.layer_sizes):
            # [B, m, H, d] -> [B, m H, d]: row j H + i is X^0_j * X^{k-1}_i.
            products = tf.reshape(stack[:, :, None, :] * hidden[:, None, :, :], [-1, fields * hidden.shape[1], dim])
            maps = tf.einsum("bpd,ph->bhd", products, self.kernels[k]) + self.biases[k][:, None]
            maps = self.activation(maps)
            if self.split_half and k < len(self.layer_sizes) - 1:
                hidden, direct = tf.split(maps, 2, axis=1)
            else:
                hidden = direct = maps
            pooled.append(tf.reduce_sum(direct, axis=-1))
        return tf.concat(pooled, axis=-1)

    @property
    def output_maps(self) -> int:
        if not self.split_half:
            return sum(self.layer_sizes)
        return sum(self.layer_sizes[:-1]) // 2 + self.layer_sizes[-1]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], self.output_maps])

    def get_config(self):
        return {**super().get_config(), "layer_sizes": list(self.layer_sizes),
                "activation": keras.activations.serialize(self.activation), "split_half": self.split_half}
