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
        self.mask = np.triu(np.ones([fields, fields], np.float32))[:, :, None]
        super().build(input_shape)

    def call(self, stack: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(`[B, K + 1, m, d]` node states, `[B, K + 1, m]` their sums over d).

        The states are kept as `[d, B, m]`, so that each layer of the inner
        variant is one batched matrix product over d (a `[B, m] x [m, m]`
        product per embedding coordinate) with no transpose of the batch in
        between; the pooled sums are taken in that layout, so a caller that
        reads only them (the body's logit) never pays for the transpose of
        the full states (an unused output is pruned from a traced graph).
        """
        if stack.shape.rank != 3:
            raise ValueError(f"DAGFMPropagation expects [batch, fields, dim], got shape {stack.shape}")
        fields = tf.transpose(stack, [2, 0, 1])  # [d, B, m]
        start = tf.matmul(fields, self.connect, transpose_b=True)  # h0[d, b, s] = sum_t C_st e_t[d]
        state, states = start, [start]
        for k in range(self.depth):
            edges = tf.transpose(self.p[k] * tf.constant(self.mask, self.p[k].dtype), [2, 0, 1])  # [d, f, s]
            if self.interaction == "inner":
                messages = tf.matmul(state, edges)  # [d, b, s] = sum_f h_f[d] p_fs[d]
            else:
                projected = tf.einsum("dbf,dfs->sbf", state, edges)  # <h_f, p_fs>
                spread = tf.matmul(projected, tf.transpose(self.q[k], [1, 0, 2]))  # [s, b, d] = sum_f <.> q_fs
                messages = tf.transpose(spread, [2, 1, 0])
            state = start * messages
            states.append(state)
        layers = tf.stack(states, axis=1)  # [d, K + 1, B, m]
        return tf.transpose(layers, [2, 1, 3, 0]), tf.transpose(tf.reduce_sum(layers, axis=0), [1, 0, 2])

    def compute_output_shape(self, input_shape):
        batch, fields, dim = input_shape[0], input_shape[1], input_shape[2]
        return (tf.TensorShape([batch, self.depth + 1, fields, dim]), tf.TensorShape([batch, self.depth + 1, fields]))

    def get_config(self):
        return {**super().get_config(), "interaction": self.interaction, "depth": self.depth}
