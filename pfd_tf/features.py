"""Raw feature values to embedding ids (or normalized values), the same way in training and in serving.

As in the PFD paper (Section 3, footnote 1), a feature becomes categorical:
ids are looked up in a vocabulary or hashed into buckets, numbers are
discretized by boundaries.  A numeric feature may instead be fed as its
value (`encoding: value`, like DeepCTR's DenseFeat or FuxiCTR's numeric
fields): the encoder outputs the float32 `(transform(x) - mean) / std`, and
the model embeds it as its table's one row times that value
(`pfd_tf.models.feature_bank`), so it is a field like any other.  The
`transform` (`numeric_transform`: none, log1p, log_square) applies to both
forms, before the boundaries of a bucketized feature.

The encoder is built from the config alone: the feature schema, plus the
mean and std of each value feature, which a run computes from its training
files when the config leaves them unset (`pfd_tf.data.feature_stats`,
`config.with_feature_stats`); it learns nothing while training.  So the input
pipeline runs it on the workers while training, and the exported student
runs the very same layers (transform and normalization included) inside its
serving graph.

Raw formats (what `serving_default` takes, one input per column, keyed by the
column's name: `serving_signature`):
- categorical: `[batch]` string (or int64 with `dtype: int64`);
- numeric: `[batch]` float32, the raw value (either encoding: the transform
  and normalization run inside the graph);
- sequence: `[batch, max_len]` string padded with "" (or int64 padded with
  -1; any negative id pads, 0 is a real id); padding encodes to id 0.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec, NumericTransform

PAD_ID = 0  # sequence padding; masked out by the embedding pooling


def vocabulary_size(spec: FeatureSpec) -> int:
    """Rows of the feature's embedding table (one for a numeric feature fed as its value)."""
    if spec.as_value:
        return 1
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


def numeric_transform(values: tf.Tensor, transform: NumericTransform) -> tf.Tensor:
    """`transform` applied to float32 `values` element-wise (`NumericTransform`).

    log1p: ln(1 + max(x, 0)), for counts (a negative count, e.g. Criteo's
    I2 -1, counts as 0).  log_square: floor(ln(x)^2) for x > 2, else x
    (negatives kept), the Criteo winners' transform that DeepCTR's and
    FuxiCTR's examples use.
    """
    if transform is NumericTransform.LOG1P:
        return tf.math.log1p(tf.maximum(values, 0.0))
    if transform is NumericTransform.LOG_SQUARE:
        # The log of max(x, 2) keeps the unused branch finite (and its gradient free of NaN).
        return tf.where(values > 2.0, tf.floor(tf.square(tf.math.log(tf.maximum(values, 2.0)))), values)
    return values


class FeatureEncoder(keras.layers.Layer):
    """Maps a dict of raw columns to a dict of model inputs by feature name: int64 embedding ids,
    or for a numeric feature fed as its value, its float32 `(transform(x) - mean) / std`.

    A value feature must have its mean and std (std > 0): a config that left
    them to the training files goes through `config.with_feature_stats` first.
    """

    def __init__(self, features: Sequence[FeatureSpec], **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.features = tuple(features)
        unresolved = [spec.name for spec in self.features if spec.needs_stats]
        if unresolved:
            raise ValueError(f"feature {unresolved[0]!r} (encoding: value) has no mean and std yet: "
                             "resolve them first (config.with_feature_stats, pfd_tf.data.feature_stats)")
        self._lookups = {spec.name: self._make_lookup(spec) for spec in self.features if not spec.as_value}

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
                value = numeric_transform(tf.cast(value, tf.float32), spec.transform)
                if spec.as_value:
                    ids[spec.name] = (value - spec.mean) / spec.std
                    continue
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
