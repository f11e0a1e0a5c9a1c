"""Wide&Deep (Cheng et al. 2016): phi_WDL(x) = phi_LR(x) + phi_DNN(x), Eq. (1) of Zhu et al. 2020."""
from __future__ import annotations

from typing import Sequence

from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, logit_layer, squeeze
from pfd_tf.models.zoo.layers import DeepPart, deep_part


class WideDeepBody(Body):
    """logit = first_order + Dense(1)(DNN(vector)): the wide part's weights, the deep part's Dense has the one bias.

    Hidden: `deep_i`, and `final` = the DNN's last hidden output (the vector
    itself with no hidden layers).
    """

    def __init__(self, deep: DeepPart, **kwargs):
        super().__init__(**kwargs)
        self.deep = deep
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        final, hidden = self.deep(fields.vector(), training=training)
        logits = fields.first_order() + squeeze(self.logit(final))
        return NetworkOutput(logits, {**hidden, "final": final})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int],
              name: str = "wide_deep") -> WideDeepBody:
    return WideDeepBody(deep_part(model, tower), name=name)
