"""The pairwise term of a factorization machine (Rendle 2010): phi_FM's second-order part."""
from __future__ import annotations

from pfd_tf._keras import keras, tf


@keras.utils.register_keras_serializable(package="pfd_tf")
class FMInteraction(keras.layers.Layer):
    """`[B, F, d]` -> `[B, 1]`: sum_{i<j} <v_i, v_j>, the second-order term of phi_FM in Eq. (2) of Zhu et al.

    Computed in O(F d) as 0.5 * sum_k((sum_i v_ik)^2 - sum_i v_ik^2)
    (Rendle 2010, Lemma 3.1), as DeepCTR's `FM` layer does.  No weights: the
    factors are the fields' embeddings.
    """

    def call(self, stack: tf.Tensor) -> tf.Tensor:
        if stack.shape.rank != 3:
            raise ValueError(f"FMInteraction expects [batch, fields, dim], got shape {stack.shape}")
        square_of_sum = tf.square(tf.reduce_sum(stack, axis=1))
        sum_of_squares = tf.reduce_sum(tf.square(stack), axis=1)
        return 0.5 * tf.reduce_sum(square_of_sum - sum_of_squares, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], 1])
