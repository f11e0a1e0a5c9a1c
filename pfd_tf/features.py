"""Raw feature values to embedding ids, the same way in training and in serving.

As in the PFD paper (Section 3, footnote 1), every feature becomes categorical:
ids are looked up in a vocabulary or hashed into buckets, numbers are
discretized by boundaries.  The encoder is built from the feature schema
alone (no state learned from data), so the input pipeline runs it on the
workers while training, and the exported student runs the very same layers
inside its serving graph.

Raw formats (what `serving_default` takes, one input per column, keyed by the
column's name: `serving_signature`):
- categorical: `[batch]` string (or int64 with `dtype: int64`);
- numeric: `[batch]` float32;
- sequence: `[batch, max_len]` string padded with "" (or int64 padded with
  -1; any negative id pads, 0 is a real id); padding encodes to id 0.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec

PAD_ID = 0  # sequence padding; masked out by the embedding pooling


def vocabulary_size(spec: FeatureSpec) -> int:
    """Rows of the feature's embedding table."""
    if spec.kind is FeatureKind.NUMERIC:
        return len(spec.boundaries) + 1
    pad = 1 if spec.kind is FeatureKind.SEQUENCE else 0
    if spec.hash_buckets:
        return spec.hash_buckets + pad
    return len(spec.vocabulary) + 1 + pad  # one out-of-vocabulary id


def raw_signature(spec: FeatureSpec) -> tf.TensorSpec:
    """The raw input a serving request carries for this feature: its column (`spec.source`)."""
    if spec.kind is FeatureKind.NUMERIC:
        return tf.TensorSpec([None], tf.float32, name=spec.source)
    dtype = tf.int64 if spec.dtype == "int64" else tf.string
    shape = [None, spec.max_len] if spec.kind is FeatureKind.SEQUENCE else [None]
    return tf.TensorSpec(shape, dtype, name=spec.source)


def serving_signature(features: Sequence[FeatureSpec]) -> dict[str, tf.TensorSpec]:
    """One input per raw column the features read, by column name, whichever features read it.

    Features that share a column read it the same way (the config checks
    that), so the column's first reader gives its spec.
    """
    signature: dict[str, tf.TensorSpec] = {}
    for spec in features:
        signature.setdefault(spec.source, raw_signature(spec))
    return signature


class FeatureEncoder(keras.layers.Layer):
    """Maps a dict of raw columns to a dict of int64 embedding ids, by feature name."""

    def __init__(self, features: Sequence[FeatureSpec], **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.features = tuple(features)
        self._lookups = {spec.name: self._make_lookup(spec) for spec in self.features}

    @staticmethod
    def _make_lookup(spec: FeatureSpec) -> keras.layers.Layer:
        name = f"encode_{spec.name}"
        if spec.kind is FeatureKind.NUMERIC:
            return keras.layers.Discretization(bin_boundaries=list(spec.boundaries), name=name)
        mask = "" if spec.kind is FeatureKind.SEQUENCE else None
        if spec.hash_buckets:
            # With a mask value, "" -> 0 and real ids -> 1..hash_buckets.
            return keras.layers.Hashing(
                spec.hash_buckets + (1 if mask is not None else 0), mask_value=mask, name=name
            )
        return keras.layers.StringLookup(
            vocabulary=list(spec.vocabulary), mask_token=mask, num_oov_indices=1, name=name
        )

    def call(self, raw: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        ids = {}
        for spec in self.features:
            value = raw[spec.source]
            if spec.kind is FeatureKind.NUMERIC:
                value = tf.cast(value, tf.float32)
            elif value.dtype != tf.string:
                # int64 ids: negative values pad a sequence; hashing sees decimal strings.
                text = tf.strings.as_string(value)
                value = tf.where(value < 0, tf.constant(""), text) if spec.kind is FeatureKind.SEQUENCE else text
            ids[spec.name] = tf.cast(self._lookups[spec.name](value), tf.int64)
        return ids

    def get_config(self):
        raise NotImplementedError(
            "FeatureEncoder is rebuilt from the pfd_tf config, not from a Keras config"
        )
