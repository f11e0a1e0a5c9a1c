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

Ids from a vocabulary (categorical and sequence features, and bucketized
numeric ones given a vocabulary instead of boundaries, `as_category`, whose
token is their integer bin floor(transform(x)) as text, e.g. "21": Criteo's
log-square bins as FuxiCTR makes them, rare bins out of vocabulary): id 0 is
out of vocabulary, line n of a `vocabulary_file` (or entry n of an inline
`vocabulary`) is id n; a sequence's padding shifts them by one.  A vocabulary
file is read by a `tf.lookup` table inside the graph, so the exported student
carries it as a SavedModel asset.  `lookup_tokens` gives the tokens the
encoder looks up, and `pfd_tf.data.vocab` counts exactly those.

Missing values: with `missing_id: true`, an empty value gets an id of its
own, the table's last row (`missing_id`): a numeric NaN (an empty CSV field
reads as NaN then; without it, as `default`) or a categorical "" (without
it, "" is out of vocabulary, or hashed like any string).  A numeric value
that is not finite (NaN, +inf, -inf; also a CSV number beyond float32's
range, which reads as inf) is an empty value wherever it comes from (a CSV
field, a TFRecord float, a serving request): the missing id with
`missing_id`, else the feature's `default` (`filled_numeric`).  So training,
held-out evaluation and the exported student read it alike, and it never
reaches a bucket of its own (NaN would otherwise fall in the top one).  A categorical
feature may `derive` its token from a YYMMDDHH column (Avazu's `hour`): the
hour of day "0".."23" or the weekday "0" (Monday) .. "6" (`derive_tokens`).

The encoder is built from the config alone: the feature schema, plus the
mean and std of each value feature, which a run computes from its training
files when the config leaves them unset (`pfd_tf.data.feature_stats`,
`config.with_feature_stats`), and the vocabulary files a run keeps
(`pfd_tf.data.vocab`); it learns nothing while training.  So the input
pipeline runs it on the workers while training, and the exported student
runs the very same layers (transform and normalization included) inside its
serving graph.

Raw formats (what `serving_default` takes, one input per column, keyed by the
column's name: `serving_signature`):
- categorical: `[batch]` string (or int64 with `dtype: int64`);
- numeric: `[batch]` float32, the raw value (any encoding: the transform
  and normalization run inside the graph); NaN (or +-inf) is a missing value:
  what an empty CSV field gives (the missing id, or the feature's `default`);
- sequence: `[batch, max_len]` string padded with "" (or int64 padded with
  -1; any negative id pads, 0 is a real id); padding encodes to id 0.  A
  request of another width stops with an InvalidArgumentError naming the
  column and max_len (`checked_width`): never truncated or padded silently.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec, NumericTransform
from pfd_tf.config.schema import Derive
from pfd_tf.table_size import missing_id, resolved_vocabulary_file, vocabulary_size  # noqa: F401  (re-exported)

PAD_ID = 0  # sequence padding; masked out by the embedding pooling
OOV_ID = 0  # a categorical token out of vocabulary (sequences: 1, after the padding)


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


HOUR_PATTERN = re.compile(r"[0-9]{8}")  # YYMMDDHH, Avazu's `hour`: 14102100 is 2014-10-21, 00h


def bad_hour(text: str) -> str | None:
    """Why `text` is not a YYMMDDHH hour that `derive_tokens` accepts (None: fine; "" is a missing value)."""
    if text == "":
        return None
    if not HOUR_PATTERN.fullmatch(text):
        return f"{text!r} is not a YYMMDDHH hour (8 digits)"
    month, day, hour = int(text[2:4]), int(text[4:6]), int(text[6:8])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23):
        return f"{text!r} is not a YYMMDDHH hour (month 01-12, day 01-31, hour 00-23)"
    return None


def _weekday(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Day of the week, 0 (Monday) .. 6, of a Gregorian date: days since 1970-01-01 (a Thursday) by
    Hinnant's days_from_civil, in int64 ops (the serving graph needs no date library)."""
    year = year - tf.cast(month <= 2, tf.int64)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return (days + 3) % 7


def _hour_parts(text: tf.Tensor):
    """(valid or empty, year, month, day, hour) of YYMMDDHH `text`, element-wise (`bad_hour`'s rules)."""
    empty = tf.equal(text, "")
    digits = tf.strings.regex_full_match(text, HOUR_PATTERN.pattern)
    safe = tf.where(digits, text, "00010100")

    def part(start):
        return tf.strings.to_number(tf.strings.substr(safe, start, 2), tf.int64)

    year, month, day, hour = 2000 + part(0), part(2), part(4), part(6)
    good = digits & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour <= 23)
    return good | empty, year, month, day, hour


def checked_hours(text: tf.Tensor, column: str) -> tf.Tensor:
    """`text`, once TensorFlow has checked each value is a YYMMDDHH hour or "" (InvalidArgumentError otherwise)."""
    ok = _hour_parts(text)[0]
    check = tf.debugging.Assert(
        tf.reduce_all(ok), [f"column {column}: values that are not YYMMDDHH hours:", tf.boolean_mask(text, ~ok)],
        summarize=3)
    with tf.control_dependencies([check]):
        return tf.identity(text)


def derive_tokens(text: tf.Tensor, derive: Derive, column: str) -> tf.Tensor:
    """The hour of day or the weekday of YYMMDDHH `text` ("" stays ""), as a string token.

    A value that is not such an hour (`bad_hour`) stops TensorFlow with an
    InvalidArgumentError naming the column (the parse function checks it
    too, so that in training `diagnose` names its file and line).
    """
    text = checked_hours(text, column)
    _, year, month, day, hour = _hour_parts(text)
    value = hour if derive is Derive.HOUR_OF_DAY else _weekday(year, month, day)
    return tf.where(tf.equal(text, ""), "", tf.strings.as_string(value))


def filled_numeric(spec: FeatureSpec, value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
    """(float32 values, missing) of a numeric column: a value that is not finite is an empty value.

    With `missing_id`, `missing` is where the values are not finite (they get
    the missing id; their value becomes 0, which nothing reads); without it,
    `missing` is None and such values become the feature's `default`, as an
    empty CSV field does (`FeatureSpec.empty_value`).
    """
    value = tf.cast(value, tf.float32)
    empty = tf.logical_not(tf.math.is_finite(value))
    if spec.missing_id:
        return tf.where(empty, 0.0, value), empty
    return tf.where(empty, tf.constant(spec.default, tf.float32), value), None


def checked_width(spec: FeatureSpec, value: tf.Tensor) -> tf.Tensor:
    """A sequence column's `[batch, width]` `value`, once TensorFlow has checked width == max_len.

    A serving signature's shape is not enforced when a SavedModel is called,
    so a longer (or shorter) request would otherwise be encoded as it is.
    """
    width = tf.shape(value)[1]
    pad = "-1" if spec.dtype == "int64" else "empty strings"  # no quotes: TensorFlow's message escapes them
    check = tf.debugging.Assert(
        tf.equal(width, spec.max_len),
        [f"input {spec.source} (sequence feature {spec.name}): each row must hold exactly max_len {spec.max_len} "
         f"ids (padded with {pad}; a longer list cut to its first {spec.max_len}, as the data files are), got", width])
    with tf.control_dependencies([check]):
        return tf.identity(value)


def lookup_tokens(spec: FeatureSpec, value: tf.Tensor) -> tf.Tensor:
    """The string tokens an id feature looks up in its vocabulary or hashes, from its raw column.

    "" is an empty value: a categorical "" (or the derived token of one), a
    sequence's padding (a negative int64 id), a numeric category's value that
    is not finite, with `missing_id` (without, that value is its `default`).
    `pfd_tf.data.vocab` counts these very tokens, leaving "" out.
    """
    if spec.kind is FeatureKind.NUMERIC:  # integer bins (`as_category`)
        value, missing = filled_numeric(spec, value)
        token = tf.strings.as_string(tf.cast(tf.floor(numeric_transform(value, spec.transform)), tf.int64))
        return token if missing is None else tf.where(missing, "", token)
    if value.dtype != tf.string:
        # int64 ids: negative values pad a sequence; lookups and hashing see decimal strings.
        text = tf.strings.as_string(value)
        return tf.where(value < 0, tf.constant(""), text) if spec.kind is FeatureKind.SEQUENCE else text
    if spec.derive is not Derive.NONE:
        return derive_tokens(value, spec.derive, spec.source)
    return value


class FeatureEncoder(keras.layers.Layer):
    """Maps a dict of raw columns to a dict of model inputs by feature name: int64 embedding ids,
    or for a numeric feature fed as its value, its float32 `(transform(x) - mean) / std`.

    A value feature must have its mean and std (std > 0): a config that left
    them to the training files goes through `config.with_feature_stats` first;
    a feature with `vocabulary_file` or `min_count`, its vocabulary resolved to
    the run's copy (`pfd_tf.data.vocab`).
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
        if spec.kind is FeatureKind.NUMERIC and not spec.as_category:
            return keras.layers.Discretization(bin_boundaries=list(spec.boundaries), name=name)
        mask = "" if spec.kind is FeatureKind.SEQUENCE else None
        if spec.hash_buckets:
            # With a mask value, "" -> 0 and real ids -> 1..hash_buckets.
            return keras.layers.Hashing(
                spec.hash_buckets + (1 if mask is not None else 0), mask_value=mask, name=name
            )
        # A file: a tf.lookup table initialized from it, which a SavedModel carries as an asset.
        vocabulary = resolved_vocabulary_file(spec) if spec.needs_vocabulary else list(spec.vocabulary)
        return keras.layers.StringLookup(vocabulary=vocabulary, mask_token=mask, num_oov_indices=1, name=name)

    def call(self, raw: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        ids = {}
        for spec in self.features:
            value = raw[spec.source]
            if spec.kind is FeatureKind.SEQUENCE:
                value = checked_width(spec, value)
            if spec.kind is FeatureKind.NUMERIC and not spec.as_category:
                value, missing = filled_numeric(spec, value)
                value = numeric_transform(value, spec.transform)
                if spec.as_value:
                    ids[spec.name] = (value - spec.mean) / spec.std
                    continue
            else:
                value = lookup_tokens(spec, value)
                missing = tf.equal(value, "") if spec.missing_id else None
            out = tf.cast(self._lookups[spec.name](value), tf.int64)
            if missing is not None:
                out = tf.where(missing, tf.constant(missing_id(spec), tf.int64), out)
            ids[spec.name] = out
        return ids

    def get_config(self):
        raise NotImplementedError(
            "FeatureEncoder is rebuilt from the pfd_tf config, not from a Keras config"
        )
