"""Logistic regression: phi_LR(x) = b + sum_i w_i x_i, the wide part of Wide&Deep (Eq. (1) of Zhu et al. 2020)."""
from __future__ import annotations

from typing import Sequence

from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Bias, Body


class LRBody(Body):
    """logit = bias + first_order.

    LR has no logit layer; its `final` is the fields' concatenated
    embedding vector `[B, sum(dim)]`, which the logit does not read: a hint
    on it trains the (shared) embeddings, and LR's label loss never does.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bias = Bias(name="bias")

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        return NetworkOutput(self.bias(fields.first_order()), {"final": fields.vector()})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "lr") -> LRBody:
    return LRBody(name=name)
