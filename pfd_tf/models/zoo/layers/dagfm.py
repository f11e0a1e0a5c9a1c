"""DAGFM's propagation over a directed acyclic graph of fields (KD-DAGFM, Tian et al., WSDM 2023; Figure 2).

"Directed Acyclic Graph Factorization Machines for CTR Prediction via
Knowledge Distillation" learns feature interactions by passing messages
along a DAG whose nodes are the m fields and whose edges run from field f to
every field s >= f (a self-loop included).  As the authors' implementation
computes it, with `*` the element-wise product:

    h^(0)_s = sum_t C_st e_t                            (C: m x m, identity at first)
    h^(k)_s = h^(0)_s * sum_{f <= s} m^(k)(h^(k-1)_f)   (k = 1 .. K, K the depth)
    inner:  m^(k)(h) = p^(k)_fs * h                     (p^(k)_fs in R^d)
    outer:  m^(k)(h) = <h, p^(k)_fs> q^(k)_fs           (the rank-1 matrix p q^T)

Unrolled, h^(k)_s is a sum over the paths s_0 <= s_1 <= ... <= s_k = s of
the DAG, each path a (k + 1)-order interaction of the fields it visits,
weighted by its edges: every k-order interaction is one path of length
k - 1 (the paper's Figure 2), so a depth-K DAGFM reaches order K + 1 in
O(m^2 d K) operations (inner) against CIN's O(m H^2 d K).
"""
from __future__ import annotations

import math

import numpy as np

from pfd_tf._keras import keras, tf
from pfd_tf.models.zoo.entries import DAGFM_TYPES  # the values the config accepts for dagfm_type


@keras.utils.register_keras_serializable(package="pfd_tf")
class DAGFMPropagation(keras.layers.Layer):
    """`[B, m, d]` -> the node states h^(0) .. h^(K) of every field, `[B, K + 1, m, d]`, and their sums over
    the embedding axis, `[B, K + 1, m]`.

    Weights: `connect` (C, `[m, m]`), `p_k` (`[m, m, d]`, row f column s the
    edge f -> s; the entries with f > s are masked out) and, for `outer`,
    `q_k` (`[m, m, d]`).  p and q start as the authors' Xavier normal with
    gain sqrt(2) (std sqrt(2 / (m d))), for both variants (their DAGFM draws
    the inner p from N(0, 1), their DeepDAGFM uses Xavier: the smaller scale
    keeps the K-fold products of a deep DAG from exploding at the start).
    """

    def __init__(self, interaction: str = "inner", depth: int = 3, **kwargs):
        super().__init__(**kwargs)
        if interaction not in DAGFM_TYPES:
            raise ValueError(f"unknown DAGFM interaction {interaction!r}; expected one of {', '.join(DAGFM_TYPES)}")
        if int(depth) < 1:
            raise ValueError(f"DAGFM needs at least one propagation layer, got depth {depth}")
        self.interaction = interaction
        self.depth = int(depth)

    def build(self, input_shape):
        fields, dim = int(input_shape[1]), int(input_shape[2])
        self.connect = self.add_weight(name="connect", shape=[fields, fields], initializer="identity")
        std = math.sqrt(2.0 / (fields * dim))

        def edge_weights(name: str):  # a fresh initializer each: an unseeded one repeats its draw
            return self.add_weight(name=name, shape=[fields, fields, dim],
                                   initializer=keras.initializers.RandomNormal(stddev=std))

        self.p = [edge_weights(f"p_{k}") for k in range(self.depth)]
        self.q = [edge_weights(f"q_{k}") for k in range(self.depth)] if self.interaction == "outer" else []
        # mask[f, s] = 1 for an edge f -> s of the DAG: s >= f.
        self.mask = np.triu(np.ones([fields, fields], np.float32))
        super().build(input_shape)

    def call(self, stack: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(`[B, K + 1, m, d]` node states, `[B, K + 1, m]` their sums over d).

        Each variant keeps its states in the layout where its products are
        batched matrix products with no transpose of the batch in between
        (each op reads and writes the `[B, m, d]` states once: at serving
        batch sizes these passes, more than the multiply-adds, are what the
        layer costs on a CPU):

        - inner, `[d, B, m]`: per embedding coordinate, `[B, m] x [m, m]`;
        - outer, `[m, B, d]`: per field f, `<h_f, p_fs>` for every s is a
          `[B, d] x [d, m]` product; per field s, `sum_f <.> q_fs` is a
          `[B, m] x [m, d]` one, with one transpose of the `[m, B, m]`
          projections between them.

        h^(0) = C e is one `[m, m]` matrix product over all B d columns.
        Each layer's sum over d is taken as soon as the layer is computed, so
        a caller that reads only the sums (the body's logit; what is served)
        never materializes the stacked states: their stack and transpose are
        an unused output, pruned from a traced graph.
        """
        if stack.shape.rank != 3:
            raise ValueError(f"DAGFMPropagation expects [batch, fields, dim], got shape {stack.shape}")
        fields, dim = int(stack.shape[1]), int(stack.shape[2])
        if self.interaction == "inner":
            states = self._inner(tf.transpose(stack, [2, 0, 1]), fields, dim)  # each [d, B, m]
            sums = tf.stack([tf.reduce_sum(state, axis=0) for state in states], axis=1)  # [B, K + 1, m]
            to_batch_major = [2, 1, 3, 0]  # [d, K + 1, B, m] -> [B, K + 1, m, d]
        else:
            states = self._outer(tf.transpose(stack, [1, 0, 2]), fields, dim)  # each [m, B, d]
            sums = tf.transpose(tf.stack([tf.reduce_sum(state, axis=2) for state in states], axis=1),
                                [2, 1, 0])  # [m, K + 1, B] -> [B, K + 1, m]
            to_batch_major = [2, 1, 0, 3]  # [m, K + 1, B, d] -> [B, K + 1, m, d]
        return tf.transpose(tf.stack(states, axis=1), to_batch_major), sums

    def _edges(self, k: int, axes: list[int]) -> tf.Tensor:
        """p^(k) with the entries that are not edges of the DAG (f > s) set to 0, its `[f, s, d]` axes
        transposed to `axes` (once per call whatever the batch: a tf.einsum doing both is slower on CPU)."""
        return tf.transpose(self.p[k] * tf.constant(self.mask[:, :, None], self.p[k].dtype), axes)

    def _inner(self, fields: tf.Tensor, m: int, d: int) -> list[tf.Tensor]:
        """h^(0) .. h^(K), each `[d, B, m]`, from the fields `[d, B, m]`."""
        start = tf.reshape(tf.matmul(tf.reshape(fields, [-1, m]), self.connect, transpose_b=True),
                           [d, -1, m])  # h0[d, b, s] = sum_t C_st e_t[d]
        state, states = start, [start]
        for k in range(self.depth):
            messages = tf.matmul(state, self._edges(k, [2, 0, 1]))  # [d, b, s] = sum_f h_f[d] p_fs[d]
            state = start * messages
            states.append(state)
        return states

    def _outer(self, fields: tf.Tensor, m: int, d: int) -> list[tf.Tensor]:
        """h^(0) .. h^(K), each `[m, B, d]`, from the fields `[m, B, d]`."""
        start = tf.reshape(tf.matmul(self.connect, tf.reshape(fields, [m, -1])),
                           [m, -1, d])  # h0[s, b, :] = sum_t C_st e_t
        state, states = start, [start]
        for k in range(self.depth):
            projected = tf.matmul(state, self._edges(k, [0, 2, 1]))  # [f, b, s] = <h_f, p_fs>
            spread = tf.matmul(tf.transpose(projected, [2, 1, 0]),
                               tf.transpose(self.q[k], [1, 0, 2]))  # [s, b, :] = sum_f <h_f, p_fs> q_fs
            state = start * spread
            states.append(state)
        return states

    def compute_output_shape(self, input_shape):
        batch, fields, dim = input_shape[0], input_shape[1], input_shape[2]
        return (tf.TensorShape([batch, self.depth + 1, fields, dim]), tf.TensorShape([batch, self.depth + 1, fields]))

    def get_config(self):
        return {**super().get_config(), "interaction": self.interaction, "depth": self.depth}
