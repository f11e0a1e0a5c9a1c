"""AutoInt+ (Song et al. 2019): interacting layers over the fields beside a DNN.

`attention_layers` multi-head self-attention layers (`InteractingLayer`,
Eq. (5)-(9) of Song et al.) over the `[B, F, d]` stack, flattened and
concatenated with the DNN part's output, then one Dense(1), as in DeepCTR's
`AutoInt` with hidden units (what Song et al. call AutoInt+).
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import tf
from pfd_tf.config import ModelConfig, NetworkConfig
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body, flatten, logit_layer, squeeze
from pfd_tf.models.zoo.layers import DeepPart, InteractingLayer, deep_part


class AutoIntBody(Body):
    """logit = Dense(1)([flatten(attention(stack)); DNN(vector)]).

    Hidden: `deep_i`, `attention` (`[B, F heads dim]`, the last interacting
    layer's output flattened) and `final` = the concatenation the logit
    reads (`attention` alone when the DNN part has no hidden layers).
    """

    def __init__(self, interacting: Sequence[InteractingLayer], deep: DeepPart, **kwargs):
        super().__init__(**kwargs)
        if not interacting:
            raise ValueError("AutoInt needs at least one attention layer (without any it is the DNN: model: dnn)")
        self.interacting = list(interacting)
        self.deep = deep
        self.logit = logit_layer()

    def call(self, fields: Fields, training: bool | None = None) -> NetworkOutput:
        attended = fields.stack()
        for layer in self.interacting:
            attended = layer(attended)
        attention = flatten(attended)
        hidden = {}
        final = attention
        if self.deep.units:
            deep, hidden = self.deep(fields.vector(), training=training)
            final = tf.concat([attention, deep], axis=-1)
        return NetworkOutput(squeeze(self.logit(final)), {**hidden, "attention": attention, "final": final})


def make_body(network: NetworkConfig, model: ModelConfig, tower: Sequence[int], name: str = "autoint") -> AutoIntBody:
    interacting = [
        InteractingLayer(network.attention_heads, network.attention_dim, network.attention_residual,
                         name=f"interacting_{i}")
        for i in range(network.attention_layers)
    ]
    return AutoIntBody(interacting, deep_part(model, tower), name=name)
