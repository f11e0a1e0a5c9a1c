"""A ranking network: its input layers followed by its tower, producing logits.

Teachers and students of the MLP kind are `Ranker`s; they differ only in the
features they read, the tables those features use and the tower size.  The
inputs are a `FeatureEmbedding` and, when the config declares a behaviour
sequence, the (possibly shared) `SequenceEmbedding` that encodes it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.models.embedding import concat_inputs, input_feature_names, input_tables
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

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None, computed=None) -> tf.Tensor:
        return self.tower(concat_inputs(self.input_layers, ids, training, computed), training=training)

    def get_config(self):
        raise NotImplementedError("a Ranker is rebuilt from the pfd_tf config (pfd_tf.models.build)")


class SumRanker(keras.Model):
    """logit = the sum of its rankers' logits.

    Used for the DNN teacher of a two-tower student with
    `model.teacher_inner_product` (NeuMF-style: an MLP beside the inner-product
    model, He et al. 2017, which the PFD paper cites as [5]).  An input layer
    several rankers read (the behaviour encoder) is computed once.
    """

    def __init__(self, rankers: Sequence[keras.Model], **kwargs):
        super().__init__(**kwargs)
        if len(rankers) < 2:
            raise ValueError("SumRanker needs at least two rankers")
        self.rankers = list(rankers)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for r in self.rankers for name in r.feature_names))

    @property
    def tables(self) -> dict:
        return {name: table for r in self.rankers for name, table in r.tables.items()}

    @property
    def all_input_layers(self) -> list:
        return list({id(layer): layer for r in self.rankers for layer in r.all_input_layers}.values())

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None, computed=None) -> tf.Tensor:
        computed = dict(computed or {})
        seen = set()
        for ranker in self.rankers:
            for layer in ranker.all_input_layers:
                if id(layer) in seen and id(layer) not in computed:
                    computed[id(layer)] = layer(ids, training=training)
                seen.add(id(layer))
        return tf.add_n([r(ids, training=training, computed=computed) for r in self.rankers])

    def get_config(self):
        raise NotImplementedError("a SumRanker is rebuilt from the pfd_tf config (pfd_tf.models.build)")
