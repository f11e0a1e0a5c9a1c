"""DeepFM (Guo et al. 2017): phi_DeepFM(x) = phi_FM(x) + phi_DNN(x), Eq. (2) of Zhu et al. 2020.

The FM and the DNN read the same embeddings (the stack and its
concatenation), as in DeepCTR's `DeepFM`.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, logit_layer, squeeze
from pfd_tf.models.zoo.layers import DeepPart, FMInteraction, deep_part


class DeepFMBody(Body):
    """logit = first_order + FM term + Dense(1)(DNN(vector)), the Dense holding the one bias.

    Hidden: `deep_i`, `fm` (`[B, 1]`), and `final` = the DNN's last hidden
    output.
    """

    def __init__(self, deep: DeepPart, **kwargs):
        super().__init__(**kwargs)
        self.interaction = FMInteraction(name="fm")
        self.deep = deep
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        pairwise = self.interaction(fields.stack())
        final, hidden = self.deep(fields.vector(), training=training)
        logits = fields.first_order() + squeeze(pairwise) + squeeze(self.logit(final))
        return NetworkOutput(logits, {**hidden, "fm": pairwise, "final": final})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "deepfm") -> DeepFMBody:
    return DeepFMBody(deep_part(model, tower), name=name)
