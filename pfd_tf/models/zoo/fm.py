"""Factorization machine (Rendle 2010): phi_FM(x) = b + sum_i w_i x_i + sum_{i<j} <v_i, v_j>, Eq. (2) of Zhu et al."""
from __future__ import annotations

from typing import Sequence

from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Bias, Body, flatten, squeeze
from pfd_tf.models.zoo.layers import FMInteraction


class FMBody(Body):
    """logit = bias + first_order + FM term over the stack.

    Hidden: `fm` (`[B, 1]`, the pairwise term) and `final`, the stack
    flattened `[B, F d]` (the factors the pairwise term reads; FM has no
    logit layer).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bias = Bias(name="bias")
        self.interaction = FMInteraction(name="fm")

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        stack = fields.stack()
        pairwise = self.interaction(stack)
        logits = self.bias(fields.first_order() + squeeze(pairwise))
        return NetworkOutput(logits, {"fm": pairwise, "final": flatten(stack)})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "fm") -> FMBody:
    return FMBody(name=name)
