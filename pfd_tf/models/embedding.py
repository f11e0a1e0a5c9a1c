"""Embedding tables and the layer that turns a feature set's ids into one vector.

Tables are plain `keras.layers.Embedding` objects, one per feature, created
once and handed to every network that reads the feature: that is how the
teacher and the student share common input components (the PFD paper's
Share&Sync, Section 4 and Table 8).  `build_tables` makes a set of tables;
`FeatureEmbedding` only looks them up, so which network owns which table is
decided by whoever builds them (see `pfd_tf.models.build`).

Lookups go through the step's `FeatureBank` (`pfd_tf.models.feature_bank`),
so a table that several networks or layers read is looked up once per step;
every layer here also takes a plain ids dict (export, unit tests), for which
it makes a bank of its own.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import EmbeddingInit, FeatureSpec, ModelConfig
from pfd_tf.features import vocabulary_size
from pfd_tf.models.feature_bank import FeatureBank


def embedding_initializer(model: ModelConfig) -> keras.initializers.Initializer:
    """How the tables start: `model.embedding_init` at `model.embedding_init_scale`.

    The default, U(-0.05, 0.05), is Keras' own; DeepCTR starts every table at
    N(0, 0.0001^2), and in a short run on sparse ids (a few steps per id)
    that matters: rows that start near zero add no noise to the networks
    reading them, where U(-0.05, 0.05) leaves noise as large as what a rare
    row learns (DeepFM 0.641 against 0.680 on an ensemble world, docs/results.md).
    """
    scale = model.embedding_init_scale
    if model.embedding_init is EmbeddingInit.NORMAL:
        return keras.initializers.RandomNormal(0.0, scale)
    return keras.initializers.RandomUniform(-scale, scale)


def build_tables(features: Sequence[FeatureSpec], prefix: str = "embedding",
                 model: ModelConfig = ModelConfig()) -> dict[str, keras.layers.Embedding]:
    """One embedding table per feature, named `{prefix}_{feature}`, started as `model` says
    (`embedding_initializer`; one initializer per table: an unseeded Keras initializer called twice
    repeats its values)."""
    return {
        spec.name: keras.layers.Embedding(
            vocabulary_size(spec),
            spec.dim,
            embeddings_initializer=embedding_initializer(model),
            name=f"{prefix}_{spec.name}",
        )
        for spec in features
    }


@keras.utils.register_keras_serializable(package="pfd_tf")
class FeatureEmbedding(keras.layers.Layer):
    """Concatenates the embeddings of `features`, looked up in `tables`.

    A sequence feature's `[batch, max_len, dim]` embeddings are mean-pooled
    over its non-padding positions (an all-padding row pools to zeros).
    The output is `[batch, sum(dim)]`, in the order of `features`.
    """

    def __init__(self, features: Sequence[FeatureSpec], tables: Mapping[str, keras.layers.Embedding], **kwargs):
        super().__init__(**kwargs)
        missing = [f.name for f in features if f.name not in tables]
        if missing:
            raise ValueError(f"no embedding table for feature {missing[0]!r}")
        self.features = tuple(features)
        # A dict attribute is tracked by Keras: checkpoints reach each table by feature name.
        self.tables = {f.name: tables[f.name] for f in self.features}
        self.output_dim = sum(f.dim for f in self.features)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def call(self, ids: Mapping[str, tf.Tensor], bank: FeatureBank | None = None) -> tf.Tensor:
        """`bank`, when given, is this step's lookups (its ids are read, not `ids`)."""
        return FeatureBank.of(ids, bank).vector(self.features, self.tables)

    def get_config(self):
        raise NotImplementedError("FeatureEmbedding is rebuilt from the pfd_tf config")


def concat_inputs(layers, ids: Mapping[str, tf.Tensor], training=None, bank: FeatureBank | None = None) -> tf.Tensor:
    """Concatenates the outputs of input layers (FeatureEmbedding, SequenceEmbedding, TargetAttention).

    Through `bank` (this step's lookups, or a fresh one over `ids`), so a
    layer shared with another network runs once per step, not once per network.
    """
    bank = FeatureBank.of(ids, bank)
    parts = [bank.output(layer, training) for layer in layers]
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)


def input_tables(layers) -> dict[str, keras.layers.Embedding]:
    """Feature name -> table, over input layers: which table a network reads each feature from."""
    return {name: table for layer in layers for name, table in layer.tables.items()}


def input_feature_names(layers) -> tuple[str, ...]:
    return tuple(name for layer in layers for name in layer.feature_names)
