"""DAGFM (KD-DAGFM, Tian et al., WSDM 2023): a linear layer over the pooled node states of a field DAG.

The student of "Directed Acyclic Graph Factorization Machines for CTR
Prediction via Knowledge Distillation": the fields' stack goes
through K propagation layers (`pfd_tf.models.zoo.layers.DAGFMPropagation`),
each node state is sum-pooled over the embedding axis, and one Dense(1)
reads the pooled states of all K + 1 layers, as the authors' code does:

    logit = w . [sum_d h^(0); sum_d h^(1); ...; sum_d h^(K)] + b,

a first-order term per field (layer 0) and interactions of order 2 .. K + 1.
No DNN part and no first-order table (`tower` is ignored).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import tf
from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, logit_layer, squeeze
from pfd_tf.models.zoo.layers import DAGFMPropagation


class DAGFMBody(Body):
    """Hidden: `dagfm` (`[B, (K + 1) m d]`, every layer's node states, layer-major, field-major within a
    layer) and `final` (`[B, (K + 1) m]`, their sums over d: the logit layer's input)."""

    def __init__(self, propagation: DAGFMPropagation, **kwargs):
        super().__init__(**kwargs)
        self.propagation = propagation
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        states, sums = self.propagation(fields.stack())  # [B, K + 1, m, d], [B, K + 1, m]
        layers, nodes, dim = states.shape[1], states.shape[2], states.shape[3]
        pooled = tf.reshape(sums, [-1, layers * nodes])
        logits = squeeze(self.logit(pooled))
        return NetworkOutput(logits, {"dagfm": tf.reshape(states, [-1, layers * nodes * dim]), "final": pooled})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "dagfm") -> DAGFMBody:
    return DAGFMBody(DAGFMPropagation(network.dagfm_type, network.dagfm_layers, name="propagation"), name=name)
