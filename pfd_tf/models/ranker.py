"""A ranking network: its feature embedding followed by its tower, producing logits.

Both the teacher and the student are `Ranker`s; they differ only in the
features they read, the tables those features use and the tower size.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import keras, tf
from pfd_tf.models.embedding import FeatureEmbedding
from pfd_tf.models.towers import MLPTower


class Ranker(keras.Model):
    """logit = tower(concat(embeddings of its features))."""

    def __init__(self, embedding: FeatureEmbedding, tower: MLPTower, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.tower = tower

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.embedding.features)

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        return self.tower(self.embedding(ids), training=training)

    def get_config(self):
        raise NotImplementedError("a Ranker is rebuilt from the pfd_tf config (pfd_tf.models.build)")
