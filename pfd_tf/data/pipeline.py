"""tf.data input pipelines over CSV and TFRecord files that the config declares.

`make_dataset_fn` returns a `dataset_fn(input_context)`, the form `fit` and
ParameterServerStrategy take.  Training rows come in the order of
`pfd_tf.data.stream` (each row once per epoch, resumable at any step), on a
cluster through the tf.data service (`pfd_tf.data.service`).  Rows are
parsed a batch at a time (vectorized `decode_csv` / `parse_example`), then
the `FeatureEncoder` turns raw values into embedding ids; the model only
ever sees ids.

Bad input: a missing column is found before training starts (the header or
first record of every file is read) and named with its file.  A malformed row
stops TensorFlow with an error that names no file, so `diagnose` re-reads the
files in Python to name the file and line; the trainer calls it when that
happens.
"""
from __future__ import annotations

import csv
import glob
import math
from typing import Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.config import Config, DataFormat, FeatureKind, FeatureSpec
from pfd_tf.data import service, stream
from pfd_tf.features import FeatureEncoder


PARSE_BATCH = 4096  # rows parsed per call when caching parsed rows


class DataError(ValueError):
    """Input data does not match the config; the message names the file and line or column."""


def resolve_files(config: Config, key: str) -> list[str]:
    """Expands the globs of `data.train_files` / `data.eval_files`, sorted."""
    files: list[str] = []
    for i, pattern in enumerate(getattr(config.data, key)):
        path = config.resolve_path(pattern)
        matched = sorted(glob.glob(path))
        if not matched:
            raise DataError(f"data.{key}[{i}]: no file matches {path!r}")
        files.extend(matched)
    return files


def _columns(config: Config) -> list[str]:
    """Every column the config reads: feature sources, then the label."""
    seen: dict[str, None] = {}
    for spec in config.features:
        seen[spec.source] = None
    seen[config.data.label] = None
    return list(seen)


def _spec_of_column(config: Config) -> dict[str, FeatureSpec]:
    return {spec.source: spec for spec in config.features}


# --------------------------------------------------------------------------
# Schema checks done up front
# --------------------------------------------------------------------------
def csv_header(config: Config, files: Sequence[str]) -> list[str]:
    """Checks every file's header holds every declared column; returns the header."""
    header: list[str] | None = None
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            first = next(csv.reader(f, delimiter=config.data.csv_delimiter), None)
        if not first:
            raise DataError(f"{path}: line 1: empty file, expected a header row")
        missing = [c for c in _columns(config) if c not in first]
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


def check_tfrecord_columns(config: Config, files: Sequence[str]) -> None:
    """Reads the first record of each file and checks every declared column is there."""
    for path in files:
        for raw in tf.data.TFRecordDataset(path).take(1):
            example = tf.train.Example.FromString(raw.numpy())
            present = set(example.features.feature)
            for column in _columns(config):
                spec = _spec_of_column(config).get(column)
                optional = spec is not None and spec.kind is FeatureKind.SEQUENCE
                if column not in present and not optional:
                    raise DataError(f"{path}: record 0: missing column {column!r} declared in the config")


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------
def _csv_parser(config: Config, header: Sequence[str]) -> Callable[[tf.Tensor], dict]:
    columns = _columns(config)
    index = {c: header.index(c) for c in columns}
    selected = sorted(index.values())
    name_at = {i: c for c, i in index.items()}
    specs = _spec_of_column(config)

    defaults = []
    for i in selected:
        spec = specs.get(name_at[i])
        if spec is None:  # the label: required, a float
            defaults.append(tf.constant([], tf.float32))
        elif spec.kind is FeatureKind.NUMERIC:
            defaults.append(tf.constant([spec.default], tf.float32))
        elif spec.kind is FeatureKind.CATEGORICAL and spec.dtype == "int64":
            defaults.append(tf.constant([-1], tf.int64))
        else:
            defaults.append(tf.constant([""], tf.string))

    def parse(lines: tf.Tensor) -> dict:
        fields = tf.io.decode_csv(
            lines,
            record_defaults=defaults,
            field_delim=config.data.csv_delimiter,
            select_cols=selected,
        )
        raw = {name_at[i]: value for i, value in zip(selected, fields)}
        for column, spec in specs.items():
            if spec.kind is FeatureKind.SEQUENCE:
                raw[column] = _split_sequence(raw[column], spec, config.data.sequence_delimiter)
        return raw

    return parse


def _split_sequence(text: tf.Tensor, spec: FeatureSpec, delimiter: str) -> tf.Tensor:
    """'a|b|c' -> a `[batch, max_len]` tensor padded as `raw_signature` describes."""
    parts = tf.strings.split(text, sep=delimiter)
    parts = tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)  # "" and "a||b" hold no id
    if spec.dtype == "int64":
        parts = tf.ragged.map_flat_values(tf.strings.to_number, parts, out_type=tf.int64)
        return parts.to_tensor(default_value=-1, shape=[None, spec.max_len])
    return parts.to_tensor(default_value="", shape=[None, spec.max_len])


def _tfrecord_parser(config: Config) -> Callable[[tf.Tensor], dict]:
    schema = {}
    for column in _columns(config):
        spec = _spec_of_column(config).get(column)
        if spec is None:
            schema[column] = tf.io.FixedLenFeature([], tf.float32)
        elif spec.kind is FeatureKind.NUMERIC:
            schema[column] = tf.io.FixedLenFeature([], tf.float32, default_value=spec.default)
        elif spec.kind is FeatureKind.SEQUENCE:
            schema[column] = tf.io.VarLenFeature(tf.int64 if spec.dtype == "int64" else tf.string)
        else:
            schema[column] = tf.io.FixedLenFeature([], tf.int64 if spec.dtype == "int64" else tf.string)
    specs = _spec_of_column(config)

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
        return raw

    return parse


# --------------------------------------------------------------------------
# The dataset_fn
# --------------------------------------------------------------------------
def make_dataset_fn(
    config: Config,
    split: str,
    batch_size: int,
    training: bool,
    start_step: int = 0,
    data_service: str | None = None,
) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """Builds `dataset_fn(input_context)` yielding `(ids_by_feature, label)` batches.

    `split` is "train" or "eval".  Evaluation data is read once, in order.
    Training data is the stream of `pfd_tf.data.stream` from step
    `start_step` on (each row once per epoch, in an order fixed by
    `train.seed`), forever (`fit` bounds it by steps, as
    ParameterServerStrategy requires); with `data_service` (the dispatcher's
    host:port), it is read through the tf.data service (`pfd_tf.data.service`), so the input context that
    ParameterServerStrategy passes (the same on every worker) is not used.
    File listing and schema checks run here, once, not inside the workers.
    """
    files = resolve_files(config, f"{split}_files")
    if config.data.format is DataFormat.CSV:
        parse = _csv_parser(config, csv_header(config, files))
        read = lambda path: tf.data.TextLineDataset(path).skip(1)  # noqa: E731
    else:
        check_tfrecord_columns(config, files)
        parse = _tfrecord_parser(config)
        read = tf.data.TFRecordDataset
    label = config.data.label
    seed = config.train.seed
    start_row = start_step * batch_size
    blocks = None
    if training and data_service:
        rows_per_file = [count_rows([path], config.data.format) for path in files]
        blocks = stream.cluster_blocks(rows_per_file, seed, start_row, config.train.steps * batch_size)

    encoder = FeatureEncoder(config.features)

    def to_model_inputs(records):
        raw = parse(records)
        return encoder(raw), tf.cast(raw[label], tf.float32)

    def parse_batches(ds, size, drop_remainder):
        ds = ds.batch(size, drop_remainder=drop_remainder)
        return ds.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def in_file_order():
        return tf.data.Dataset.from_tensor_slices(files).interleave(read, cycle_length=min(4, len(files)))

    memory: dict = {}  # data.cache: the encoded training rows, parsed once for every fit call

    def build(start_row: int) -> tf.data.Dataset:
        if not training:
            return parse_batches(in_file_order(), batch_size, False).prefetch(tf.data.AUTOTUNE)
        if blocks is not None:
            records = stream.cluster_records(files, read, seed, blocks, config.data.shuffle_buffer)
            return parse_batches(records, batch_size, True)
        if config.data.cache:
            if not memory:
                memory.update(_in_memory(parse_batches(in_file_order(), PARSE_BATCH, False)))
            ds = stream.in_memory_batches(memory["ids"], memory["labels"], seed, start_row, batch_size)
        else:
            records = stream.local_records(files, read, seed, start_row,
                                           lambda: count_rows(files, config.data.format), config.data.shuffle_buffer)
            ds = parse_batches(records, batch_size, True)
        return ds.prefetch(tf.data.AUTOTUNE)

    registered = service.ServiceDataset(build(start_row), data_service) if blocks is not None else None

    def starting_at(step: int):
        """The same training stream from step `step` on (what the next `fit` call reads)."""

        def dataset_fn(input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
            del input_context  # ParameterServerStrategy gives every worker InputContext(1, 0)
            return registered.read() if registered is not None else build(step * batch_size)

        dataset_fn.files = files  # type: ignore[attr-defined]  (for diagnose and steps)
        dataset_fn.starting_at = starting_at  # type: ignore[attr-defined]
        return dataset_fn

    return starting_at(start_step)


def _in_memory(batches: tf.data.Dataset) -> dict:
    """Every batch of `batches` concatenated: {"ids": {feature: [rows, ...]}, "labels": [rows]}."""
    ids: dict[str, list] = {}
    labels = []
    for batch_ids, batch_labels in batches:
        for name, value in batch_ids.items():
            ids.setdefault(name, []).append(value)
        labels.append(batch_labels)
    if not labels:
        raise DataError("data.cache: the training files hold no rows")
    return {"ids": {name: tf.concat(parts, axis=0) for name, parts in ids.items()}, "labels": tf.concat(labels, 0)}


def count_rows(files: Sequence[str], data_format: DataFormat) -> int:
    """Data rows in the files (header lines excluded for CSV)."""
    if data_format is DataFormat.CSV:
        total = 0
        for path in files:
            with open(path, "rb") as f:
                total += max(sum(1 for _ in f) - 1, 0)
        return total
    return sum(int(tf.data.TFRecordDataset(p).reduce(0, lambda n, _: n + 1)) for p in files)


def eval_steps(config: Config, files: Sequence[str]) -> int:
    """Batches needed to read the held-out files once."""
    if config.train.eval_steps:
        return config.train.eval_steps
    rows = count_rows(files, config.data.format)
    return max(1, math.ceil(rows / config.train.eval_batch_size))


# --------------------------------------------------------------------------
# Naming the bad row when TensorFlow could not
# --------------------------------------------------------------------------
def diagnose(config: Config, files: Sequence[str]) -> str | None:
    """Finds the first row TensorFlow cannot parse; returns 'file: line N: why' or None."""
    if config.data.format is not DataFormat.CSV:
        return _diagnose_tfrecord(config, files)
    specs = _spec_of_column(config)
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=config.data.csv_delimiter)
            header = next(reader, [])
            where = {c: header.index(c) for c in _columns(config) if c in header}
            for row in reader:
                line = reader.line_num
                if len(row) != len(header):
                    return (
                        f"{path}: line {line}: expected {len(header)} fields, found {len(row)}"
                    )
                for column, i in where.items():
                    spec = specs.get(column)
                    value = row[i]
                    numeric = spec is None or spec.kind is FeatureKind.NUMERIC
                    integer = spec is not None and spec.kind is FeatureKind.CATEGORICAL and spec.dtype == "int64"
                    if spec is None and value == "":
                        return f"{path}: line {line}: label column {column!r} is empty"
                    if (numeric or integer) and value != "":
                        try:
                            float(value) if numeric else int(value)
                        except ValueError:
                            kind = "number" if numeric else "integer id"
                            return f"{path}: line {line}: column {column!r}: {value!r} is not a {kind}"
    return None


def _diagnose_tfrecord(config: Config, files: Sequence[str]) -> str | None:
    parse = _tfrecord_parser(config)
    for path in files:
        for i, record in enumerate(tf.data.TFRecordDataset(path)):
            try:
                parse(tf.reshape(record, [1]))
            except (tf.errors.InvalidArgumentError, ValueError) as err:
                reason = str(err).strip().splitlines()[0]
                return f"{path}: record {i}: {reason}"
    return None

