"""xDeepFM (Lian et al. 2018): phi_xDeepFM(x) = phi_CIN(x) + phi_DNN(x), Eq. (4) of Zhu et al. 2020.

With xDeepFM's linear part (Eq. (8) of Lian et al., and DeepCTR's `xDeepFM`):
    logit = first_order + Dense(1, no bias)(CIN(stack)) + Dense(1)(DNN(vector)).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, logit_layer, squeeze
from pfd_tf.models.zoo.layers import CIN, DeepPart, deep_part


class XDeepFMBody(Body):
    """The three logits summed; the DNN's Dense(1) holds the one bias.

    Hidden: `deep_i`, `cin` (`[B, feature maps]`, the sum-pooled maps) and
    `final` = the DNN's last hidden output.
    """

    def __init__(self, cin: CIN, deep: DeepPart, **kwargs):
        super().__init__(**kwargs)
        self.cin = cin
        self.cin_logit = logit_layer("cin_logit", use_bias=False)
        self.deep = deep
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        pooled = self.cin(fields.stack())
        final, hidden = self.deep(fields.vector(), training=training)
        logits = fields.first_order() + squeeze(self.cin_logit(pooled)) + squeeze(self.logit(final))
        return NetworkOutput(logits, {**hidden, "cin": pooled, "final": final})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "xdeepfm") -> XDeepFMBody:
    return XDeepFMBody(CIN(network.cin_layers, activation=network.cin_activation, name="cin"), deep_part(model, tower), name=name)
