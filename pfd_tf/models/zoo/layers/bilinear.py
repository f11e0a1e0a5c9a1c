"""FiBiNET's bilinear interaction (Huang et al. 2019, Section 3.4): p_ij = (v_i W) * v_j for each pair i < j."""
from __future__ import annotations

import itertools

from pfd_tf._keras import keras, tf
from pfd_tf.models.zoo.entries import BILINEAR as BILINEAR_TYPES  # the values the config accepts for bilinear


@keras.utils.register_keras_serializable(package="pfd_tf")
class BilinearInteraction(keras.layers.Layer):
    """`[B, F, d]` -> `[B, F (F - 1) / 2, d]`, the pairs (i, j), i < j, in lexicographic order.

    Which `[d, d]` matrix W a pair uses (Eq. (4)-(6) of Huang et al.):
    `field_all` one W for every pair; `field_each` W_i per first field i
    (F - 1 of them); `field_interaction` W_ij per pair.  `*` is the
    element-wise product.
    """

    def __init__(self, bilinear_type: str = "field_interaction", **kwargs):
        super().__init__(**kwargs)
        if bilinear_type not in BILINEAR_TYPES:
            raise ValueError(f"unknown bilinear type {bilinear_type!r}; expected one of {', '.join(BILINEAR_TYPES)}")
        self.bilinear_type = bilinear_type

    def build(self, input_shape):
        fields, dim = int(input_shape[1]), int(input_shape[2])
        if fields < 2:
            raise ValueError(f"BilinearInteraction needs at least 2 fields, got {fields}")
        self.pairs = tuple(itertools.combinations(range(fields), 2))
        count = {"field_all": 1, "field_each": fields - 1, "field_interaction": len(self.pairs)}[self.bilinear_type]
        self.kernel = self.add_weight(name="kernel", shape=[count, dim, dim], initializer="glorot_normal")
        super().build(input_shape)

    def _matrix(self, index: int, i: int) -> int:
        """Which of the kernels pair number `index`, whose first field is `i`, uses."""
        return {"field_all": 0, "field_each": i, "field_interaction": index}[self.bilinear_type]

    def call(self, stack: tf.Tensor) -> tf.Tensor:
        if stack.shape.rank != 3:
            raise ValueError(f"BilinearInteraction expects [batch, fields, dim], got shape {stack.shape}")
        first = tf.gather(stack, [i for i, _ in self.pairs], axis=1)  # [B, P, d]
        second = tf.gather(stack, [j for _, j in self.pairs], axis=1)
        matrices = tf.gather(self.kernel, [self._matrix(n, i) for n, (i, _) in enumerate(self.pairs)])  # [P, d, d]
        return tf.einsum("bpd,pde->bpe", first, matrices) * second

    def compute_output_shape(self, input_shape):
        fields = int(input_shape[1])
        return tf.TensorShape([input_shape[0], fields * (fields - 1) // 2, input_shape[2]])

    def get_config(self):
        return {**super().get_config(), "bilinear_type": self.bilinear_type}
