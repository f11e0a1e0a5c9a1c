"""A ranking network, the zoo's DNN: its input layers followed by its tower, producing logits.

Teachers and students of the MLP kind are `Ranker`s; they differ only in the
features they read, the tables those features use and the tower size.  The
inputs are a `FeatureEmbedding` and, when the config declares a behaviour
sequence, the (possibly shared) `SequenceEmbedding` that encodes it.  They
read the step's `FeatureBank`, which the distiller hands to both networks,
so tables and input layers they share are computed once per step.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.models.embedding import concat_inputs, input_feature_names, input_tables
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.heads import with_heads
from pfd_tf.models.network import NetworkOutput
from pfd_tf.models.towers import MLPTower


class Ranker(keras.Model):
    """logit = tower(concat(outputs of its input layers))."""

    def __init__(self, inputs: Sequence[keras.layers.Layer], tower: MLPTower, **kwargs):
        super().__init__(**kwargs)
        self.input_layers = list(inputs)  # a tracked list: checkpoints reach the tables through it
        self.tower = tower

    @property
    def feature_names(self) -> tuple[str, ...]:
        return input_feature_names(self.input_layers)

    @property
    def tables(self) -> dict:
        return input_tables(self.input_layers)

    @property
    def all_input_layers(self) -> list:
        return list(self.input_layers)

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None, bank: FeatureBank | None = None) -> tf.Tensor:
        """`bank`: this step's lookups, shared with the other networks (a fresh one over `ids` if None)."""
        return self.forward(ids, training, bank).logits

    def forward(self, ids: Mapping[str, tf.Tensor], training: bool | None = None,
                bank: FeatureBank | None = None) -> NetworkOutput:
        """Logits and hidden outputs (`deep_i`, `final`: `MLPTower.forward`)."""
        logits, hidden = self.tower.forward(concat_inputs(self.input_layers, ids, training, bank), training=training)
        return with_heads(self, NetworkOutput(logits, hidden))

    def get_config(self):
        raise NotImplementedError("a Ranker is rebuilt from the pfd_tf config (pfd_tf.models.build)")
