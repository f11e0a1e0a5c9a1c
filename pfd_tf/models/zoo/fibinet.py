"""FiBiNET (Huang et al. 2019): SENET field importance and bilinear interactions, then a DNN.

As DeepCTR's `FiBiNET` composes it: the SENET-reweighted stack (Eq. (1)-(3)
of Huang et al.) and the original stack each go through their own bilinear
interaction (Eq. (4)-(6)); the two `[B, F (F - 1) / 2, d]` outputs are
concatenated (SENET's first), flattened and fed to the DNN, whose Dense(1)
logit is summed with the first-order logit (DeepCTR adds its linear part):
    logit = first_order + Dense(1)(DNN(flatten([bilinear(senet(stack)); bilinear(stack)]))).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import tf
from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, flatten, logit_layer, squeeze
from pfd_tf.models.zoo.layers import SENET, BilinearInteraction, DeepPart, deep_part


class FiBiNetBody(Body):
    """Hidden: `deep_i`, `senet` (`[B, F d]`, the reweighted stack flattened), `bilinear`
    (`[B, F (F - 1) d]`, the DNN's input) and `final` = the DNN's last hidden output."""

    def __init__(self, senet: SENET, senet_bilinear: BilinearInteraction, bilinear: BilinearInteraction,
                 deep: DeepPart, **kwargs):
        super().__init__(**kwargs)
        self.senet = senet
        self.senet_bilinear = senet_bilinear
        self.bilinear = bilinear
        self.deep = deep
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        stack = fields.stack()
        reweighted = self.senet(stack)
        pairs = flatten(tf.concat([self.senet_bilinear(reweighted), self.bilinear(stack)], axis=1))
        final, hidden = self.deep(pairs, training=training)
        logits = fields.first_order() + squeeze(self.logit(final))
        return NetworkOutput(logits, {**hidden, "senet": flatten(reweighted), "bilinear": pairs, "final": final})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "fibinet") -> FiBiNetBody:
    return FiBiNetBody(
        SENET(network.senet_reduction, name="senet"),
        BilinearInteraction(network.bilinear, name="senet_bilinear"),
        BilinearInteraction(network.bilinear, name="bilinear"),
        deep_part(model, tower),
        name=name,
    )
