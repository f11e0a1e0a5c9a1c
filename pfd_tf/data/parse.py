"""Raw records to raw column tensors: the columns the config reads, checked up front, parsed a batch at a time.

`parser(config, files)` first checks every file declares the columns the
config reads (a CSV header, a TFRecord file's first record; for header-less
CSV files, `data.columns`, the field count of each file's first line), then returns
the vectorized parse function (`decode_csv` / `parse_example`) that
`pfd_tf.data.pipeline` maps over batches of raw records.  What a row must
satisfy, the parse function enforces, so that TensorFlow stops on the first
bad row (and `pfd_tf.data.checks.diagnose` then names its file and line):

- a column the config reads is named once in the header (`check_unique_columns`);
- a CSV row has exactly as many fields as the header or `data.columns` (every column is
  decoded, the unread ones as strings: an unquoted delimiter in a value
  would shift every later column);
- numbers and integer ids parse (an empty numeric field reads as NaN with
  `missing_id`, else as the feature's `default`; a number that is not
  finite is read, and the encoder takes it as empty: `features.filled_numeric`;
  an int64 id must fit in int64), YYMMDDHH hours that
  features `derive` from are hours (`pfd_tf.features.derive_tokens`);
- each task's label (`pfd_tf.config.tasks`) meets its rule
  (`pfd_tf.data.label_rules`, `checked_label_column`): 0 or 1 for a binary
  task (not 2, not -1, not NaN), a finite number for a regression task, one
  above -1 if the task's transform is log1p.
"""
from __future__ import annotations

import csv
from typing import Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.config import Config, DataFormat, FeatureKind, FeatureSpec
from pfd_tf.config.schema import Derive
from pfd_tf.data.label_rules import LabelRule, label_rules
from pfd_tf.data.files import DataError, check_suffix, compression_type, open_text, record_error
from pfd_tf.features import checked_hours

PARSE_BATCH = 4096  # rows parsed per call when every row is read once (caching, checking)


def columns(config: Config) -> list[str]:
    """Every column the config reads: feature sources, then each task's label."""
    seen: dict[str, None] = {}
    for spec in config.features:
        seen[spec.source] = None
    for task in config.task_specs:
        seen[task.label] = None
    return list(seen)




def spec_of_column(config: Config) -> dict[str, FeatureSpec]:
    return {spec.source: spec for spec in config.features}


def hour_columns(config: Config) -> list[str]:
    """The columns features `derive` an hour of day or a weekday from: each value must be a YYMMDDHH hour."""
    return list(dict.fromkeys(spec.source for spec in config.features if spec.derive is not Derive.NONE))


def _checked_values(raw: dict, config: Config, check_labels: bool) -> dict:
    for column in hour_columns(config):
        raw[column] = checked_hours(raw[column], column)
    if check_labels:
        for column, rule in label_rules(config).items():
            raw[column] = checked_label_column(raw[column], column, rule)
    return raw


# --------------------------------------------------------------------------
# Schema checks done up front
# --------------------------------------------------------------------------
def csv_header(config: Config, files: Sequence[str]) -> list[str]:
    """Checks every file's header holds every declared column; returns the header.

    Header-less files (`data.columns`): checks each file's first line has
    as many fields as `data.columns` names (and is no header); returns them.
    """
    if not config.data.header:
        return headerless_columns(config, files)
    header: list[str] | None = None
    for path in files:
        with open_text(path) as f:
            first = next(csv.reader(f, delimiter=config.data.csv_delimiter), None)
        if not first:
            raise DataError(f"{path}: line 1: empty file, expected a header row")
        check_unique_columns(path, first, columns(config))
        missing = [c for c in columns(config) if c not in first]
        if missing:
            raise DataError(
                f"{path}: line 1: missing column {missing[0]!r} declared in the config "
                f"(header has: {', '.join(first)})"
            )
        if header is None:
            header = first
        elif first != header:
            raise DataError(f"{path}: line 1: header differs from {files[0]}'s header")
    assert header is not None
    return header


def check_unique_columns(path: str, header: Sequence[str], read: Sequence[str]) -> None:
    """DataError if a column the config reads is named twice in `path`'s header: which one is meant?"""
    for column in read:
        at = [i + 1 for i, name in enumerate(header) if name == column]
        if len(at) > 1:
            raise DataError(f"{path}: line 1: the header names column {column!r} twice (fields {at[0]} and {at[1]}); "
                            "rename one: the config reads it by name")


def headerless_columns(config: Config, files: Sequence[str]) -> list[str]:
    """`data.columns`, once each file's first line is seen to have that many fields and not to be a header."""
    names = list(config.data.columns)
    label = config.task_specs[0].label
    label_at = names.index(label)
    for path in files:
        with open_text(path) as f:
            first = next(csv.reader(f, delimiter=config.data.csv_delimiter), None)
        if first is None:
            continue  # no row (counting the rows says whether any file has one)
        if len(first) != len(names):
            hint = " (is data.csv_delimiter right?)" if len(first) == 1 else ""
            raise DataError(f"{path}: line 1: {len(first)} fields, but data.columns names {len(names)}{hint}")
        if first[label_at] == label:
            raise DataError(f"{path}: line 1: a header line (it holds {label!r}, the label's name, where "
                            "the label goes), but data.columns says the files have none: remove data.columns to "
                            "read the header, or remove the line")
    return names


def check_tfrecord_columns(config: Config, files: Sequence[str]) -> None:
    """Reads the first record of each file and checks every declared column is there."""
    specs = spec_of_column(config)
    for path in files:
        check_suffix(path)
        records = tf.data.TFRecordDataset(path, compression_type=compression_type(path))
        try:
            first = [raw.numpy() for raw in records.take(1)]
        except tf.errors.DataLossError as err:
            raise record_error(path, 0, err) from err
        if not first:
            continue  # no record (an empty file, or too short to be one: counting the rows says which)
        try:
            example = tf.train.Example.FromString(first[0])
        except Exception as err:  # google.protobuf.message.DecodeError
            raise DataError(f"{path}: record 0: not a serialized tf.train.Example") from err
        present = set(example.features.feature)
        for column in columns(config):
            spec = specs.get(column)
            optional = spec is not None and spec.kind is FeatureKind.SEQUENCE
            if column not in present and not optional:
                raise DataError(f"{path}: record 0: missing column {column!r} declared in the config")


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------
def checked_label_column(values: tf.Tensor, column: str, rule: LabelRule) -> tf.Tensor:
    """`values`, once TensorFlow has checked each meets `rule` (InvalidArgumentError otherwise; NaN never does)."""
    if rule is LabelRule.BINARY:
        ok = tf.logical_or(tf.equal(values, 0.0), tf.equal(values, 1.0))
    else:
        ok = tf.math.is_finite(values)
        if rule is LabelRule.ABOVE_MINUS_ONE:
            ok = tf.logical_and(ok, values > -1.0)
    return _checked(values, tf.logical_not(ok), f"label column {column}: values not {rule.value}:")


def _checked(values: tf.Tensor, bad: tf.Tensor, why: str) -> tf.Tensor:
    """`values`, once TensorFlow has checked no element is `bad` (InvalidArgumentError `why` and a few of them)."""
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [why, tf.boolean_mask(values, bad)], summarize=3)
    with tf.control_dependencies([check]):
        return tf.identity(values)


def csv_parser(config: Config, header: Sequence[str], check_labels: bool = True) -> Callable[[tf.Tensor], dict]:
    index = {c: header.index(c) for c in columns(config)}
    specs = spec_of_column(config)

    # Every field is decoded, so decode_csv checks each row's field count; unread ones as any text.
    defaults = [tf.constant([""], tf.string) for _ in header]
    for column, i in index.items():
        spec = specs.get(column)
        if spec is None:  # a label: required, a float
            defaults[i] = tf.constant([], tf.float32)
        elif spec.kind is FeatureKind.NUMERIC:
            defaults[i] = tf.constant([spec.empty_value], tf.float32)
        elif spec.kind is FeatureKind.CATEGORICAL and spec.dtype == "int64":
            defaults[i] = tf.constant([-1], tf.int64)

    def parse(lines: tf.Tensor) -> dict:
        fields = tf.io.decode_csv(lines, record_defaults=defaults, field_delim=config.data.csv_delimiter)
        raw = {column: fields[i] for column, i in index.items()}
        for column, spec in specs.items():
            if spec.kind is FeatureKind.SEQUENCE:
                raw[column] = _split_sequence(raw[column], spec, config.data.sequence_delimiter)
        return _checked_values(raw, config, check_labels)

    return parse


def _split_sequence(text: tf.Tensor, spec: FeatureSpec, delimiter: str) -> tf.Tensor:
    """'a|b|c' -> a `[batch, max_len]` tensor padded as `raw_signature` describes."""
    parts = tf.strings.split(text, sep=delimiter)
    parts = tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)  # "" and "a||b" hold no id
    if spec.dtype == "int64":
        parts = tf.ragged.map_flat_values(tf.strings.to_number, parts, out_type=tf.int64)
        return parts.to_tensor(default_value=-1, shape=[None, spec.max_len])
    return parts.to_tensor(default_value="", shape=[None, spec.max_len])


def tfrecord_parser(config: Config, check_labels: bool = True) -> Callable[[tf.Tensor], dict]:
    specs = spec_of_column(config)
    schema = {}
    for column in columns(config):
        spec = specs.get(column)
        if spec is None:
            schema[column] = tf.io.FixedLenFeature([], tf.float32)
        elif spec.kind is FeatureKind.NUMERIC:
            schema[column] = tf.io.FixedLenFeature([], tf.float32, default_value=spec.empty_value)
        elif spec.kind is FeatureKind.SEQUENCE:
            schema[column] = tf.io.VarLenFeature(tf.int64 if spec.dtype == "int64" else tf.string)
        else:
            schema[column] = tf.io.FixedLenFeature([], tf.int64 if spec.dtype == "int64" else tf.string)

    def parse(records: tf.Tensor) -> dict:
        raw = tf.io.parse_example(records, schema)
        for column, spec in specs.items():
            if spec.kind is FeatureKind.SEQUENCE:
                pad = -1 if spec.dtype == "int64" else ""
                dense = tf.sparse.to_dense(raw[column], default_value=pad)
                dense = dense[:, : spec.max_len]
                width = spec.max_len - tf.shape(dense)[1]
                raw[column] = tf.pad(dense, [[0, 0], [0, width]], constant_values=pad)
                raw[column].set_shape([None, spec.max_len])
        return _checked_values(raw, config, check_labels)

    return parse


def parser(config: Config, files: Sequence[str], check_labels: bool = True) -> Callable[[tf.Tensor], dict]:
    """Checks the files' columns (DataError naming the file), then returns the parse function for them."""
    if config.data.format is DataFormat.CSV:
        return csv_parser(config, csv_header(config, files), check_labels)
    check_tfrecord_columns(config, files)
    return tfrecord_parser(config, check_labels)
