"""Deep & Cross: phi_DCN(x) = phi_Cross(x) + phi_DNN(x), Eq. (3) of Zhu et al. 2020.

The cross network is tensorflow-recommenders' `Cross` layer,
x_{l+1} = x_0 * (W x_l + b) + x_l (Eq. (1) of Wang et al. 2021, DCN-v2):
`dcn` with a full `[D, D]` W, `dcn_v2` with the low-rank W = U V
(`projection_dim = cross_rank`, their Eq. (2)).  As in DCN and DeepCTR's
`DCN`, the cross and the deep outputs are concatenated and one Dense(1)
makes the logit, which is Eq. (3)'s sum of two linear read-outs.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow_recommenders as tfrs

from pfd_tf._keras import tf
from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, logit_layer, squeeze
from pfd_tf.models.zoo.layers import DeepPart, deep_part


class DCNBody(Body):
    """logit = Dense(1)([cross(vector); DNN(vector)]).

    Hidden: `deep_i`, `cross` (`[B, D]`, the last cross layer's output) and
    `final` = the concatenation the logit reads (the cross output alone
    when the DNN part has no hidden layers).
    """

    def __init__(self, cross: Sequence[tfrs.layers.dcn.Cross], deep: DeepPart, **kwargs):
        super().__init__(**kwargs)
        if not cross:
            raise ValueError("DCN needs at least one cross layer (without any it is the DNN: model: dnn)")
        self.cross = list(cross)
        self.deep = deep
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        x0 = fields.vector()
        crossed = x0
        for layer in self.cross:
            crossed = layer(x0, crossed)
        parts = [crossed]
        hidden = {}
        if self.deep.units:
            deep, hidden = self.deep(x0, training=training)
            parts.append(deep)
        final = tf.concat(parts, axis=-1) if len(parts) > 1 else crossed
        return NetworkOutput(squeeze(self.logit(final)), {**hidden, "cross": crossed, "final": final})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "dcn",
              low_rank: bool = False) -> DCNBody:
    """`low_rank`: DCN-v2's W = U V of rank `network.cross_rank`; else the full-rank W."""
    if low_rank and network.cross_rank < 1:
        raise ValueError(f"dcn_v2 needs cross_rank >= 1, got {network.cross_rank}")
    projection = network.cross_rank if low_rank else None
    cross = [tfrs.layers.dcn.Cross(projection_dim=projection, name=f"cross_{i}") for i in range(network.cross_layers)]
    return DCNBody(cross, deep_part(model, tower), name=name)


def make_low_rank_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int],
                       name: str = "dcn_v2") -> DCNBody:
    return make_body(network, model, tower, name, low_rank=True)
