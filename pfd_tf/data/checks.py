"""Checking the data before training, and naming the bad row when TensorFlow could not.

Before training, the trainer calls `training_rows_per_file` (every training
file's header or first record, its framing and its rows counted: cheap) and
`check_eval_split` (every held-out row parsed once, through the parse
function training uses), so that a bad file stops the run before it trains,
not after.

During training a bad training row stops TensorFlow with an error that names
no file (InvalidArgumentError for a row that does not parse or a label that
is not 0 or 1; DataLossError for a TFRecord file damaged since it was
counted).  `diagnose` then re-reads the files in Python, with the rules of
`pfd_tf.data.parse`, and returns 'file: line N: why' (CSV, 1-based: the
header is line 1, or with `data.columns` the first row is) or
'file: record N: why' (TFRecord, 0-based).
"""
from __future__ import annotations

import csv
import gzip
import re
import zlib
from typing import Sequence

import numpy as np

from pfd_tf._keras import tf
from pfd_tf.config import Config, ConfigError, DataFormat, FeatureKind, FeatureSpec
from pfd_tf.data.files import (DataError, compression_type, file_order, layout, open_text, require_rows,
                               resolve_files, rows_per_file, shared_files, tf_reason)
from pfd_tf.features import bad_hour
from pfd_tf.data.label_rules import LabelRule, label_ok, label_rules
from pfd_tf.data.parse import (PARSE_BATCH, columns, hour_columns, parser, spec_of_column,
                               tfrecord_parser)


def count_training_rows(config: Config) -> int:
    """Rows in `data.train_files`, after checking each file's columns, format and framing.

    Raises DataError naming the file: a missing column, a CSV file that is not
    text (or a TFRecord file that is not TFRecord: is data.format right?), a
    damaged or truncated TFRecord or gzip file, no row in any training file.
    """
    return sum(training_rows_per_file(config))


def training_rows_per_file(config: Config) -> list[int]:
    """`count_training_rows` file by file (in `resolve_files` order): what `make_dataset_fn(rows_per_file=)` takes."""
    files = resolve_files(config, "train_files")
    parser(config, files)
    counts = rows_per_file(files, *layout(config))
    require_rows(files, counts, "train_files")
    return counts


def check_eval_split(config: Config, apart: bool = True) -> dict:
    """Parses every row of `data.eval_files` once; returns {"files", "rows", "positives", "negatives"} (of the
    first task's label, the served one).

    The rows go through the parse function training and evaluation use, so a
    wrong field count, a value that does not parse or a label that is not 0 or
    1 raises DataError naming file, line (or record) and column, before
    training rather than after it.  No row at all is a DataError too; one
    class only is not (the caller may warn: AUC is undefined then).  A
    held-out file that is a training file too is a ConfigError naming both
    keys (`check_held_out_apart`), unless `apart` is False (pfd-eval, which checks that itself, against the
    files the run recorded too).
    """
    if apart:
        check_held_out_apart(config)
    files = resolve_files(config, "eval_files")
    parse = parser(config, files)
    require_rows(files, rows_per_file(files, *layout(config)), "eval_files")
    label = config.task_specs[0].label
    batches = file_order(files, *layout(config)).batch(PARSE_BATCH).map(parse)
    rows = positives = 0
    try:
        for raw in batches:  # the whole parsed row is produced, so no check is pruned away
            labels = raw[label].numpy()
            rows += labels.size
            positives += int(labels.sum())
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
        raise DataError(diagnose(config, files) or f"data.eval_files: {tf_reason(err)}") from err
    return {"files": list(files), "rows": rows, "positives": positives, "negatives": rows - positives}


def check_held_out_apart(config: Config) -> None:
    """ConfigError if a file of `data.eval_files` is a training file too (by real path): its held-out
    metrics would score rows the model trained on."""
    shared = shared_files(config, "eval_files", "train_files")
    if shared:
        raise ConfigError(f"data.eval_files: {shared[0]} is a training file too (data.train_files): the held-out "
                          "metrics would score rows the model trained on; hold out files that are not trained on")


def diagnose(config: Config, files: Sequence[str]) -> str | None:
    """Finds the first row TensorFlow cannot read; returns 'file: line N: why' (or 'record N') or None."""
    one = _diagnose_csv if config.data.format is DataFormat.CSV else _diagnose_tfrecord
    for path in files:
        try:
            found = one(config, path)
        except DataError as err:  # the file itself: not text, not TFRecord, damaged
            return str(err)
        if found:
            return found
    return None


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------
def _diagnose_csv(config: Config, path: str) -> str | None:
    specs = spec_of_column(config)
    kinds = label_rules(config)
    line = 1 if config.data.header else 0
    try:
        with open_text(path) as f:
            reader = csv.reader(f, delimiter=config.data.csv_delimiter)
            header = next(reader, []) if config.data.header else list(config.data.columns)
            where = {c: header.index(c) for c in columns(config) if c in header}
            hours = [c for c in hour_columns(config) if c in header]
            for row in reader:
                line = reader.line_num
                if len(row) != len(header):
                    return f"{path}: line {line}: expected {len(header)} fields, found {len(row)}"
                for column, i in where.items():
                    why = _bad_value(column, specs.get(column), row[i], config.data.sequence_delimiter,
                                     kinds.get(column, LabelRule.BINARY))
                    if why:
                        return f"{path}: line {line}: {why}"
                for column in hours:
                    why = bad_hour(row[header.index(column)])
                    if why:
                        return f"{path}: line {line}: column {column!r}: {why}"
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return f"{path}: line {line + 1}: gzip data ends early or is corrupt (a truncated file?)"
    except csv.Error as err:
        return f"{path}: line {line + 1}: {err}"
    return None


def _bad_value(column: str, spec: FeatureSpec | None, value: str, sequence_delimiter: str,
               rule: LabelRule = LabelRule.BINARY) -> str | None:
    """Why TensorFlow refuses `value` in `column` (spec None: a label, whose values meet `rule`), or None."""
    if spec is None:
        if value == "":
            return f"label column {column!r} is empty"
        try:
            number = float(value)
        except ValueError:
            return f"label column {column!r}: {value!r} is not a number"
        return _bad_label(column, number, rule, value)
    integer = spec.dtype == "int64" and spec.kind in (FeatureKind.CATEGORICAL, FeatureKind.SEQUENCE)
    if spec.kind is FeatureKind.NUMERIC:
        return None if not value or _is_number(value) else f"column {column!r}: {value!r} is not a number"
    if not integer:
        return None
    parts = value.split(sequence_delimiter) if spec.kind is FeatureKind.SEQUENCE else [value]
    for part in (p for p in parts if p):
        if not _INT.fullmatch(part.strip()):
            return f"column {column!r}: {part!r} is not an integer id"
        if not _INT64_MIN <= int(part) <= _INT64_MAX:
            return f"column {column!r}: {part.strip()} does not fit in int64 (dtype: int64; hash it as dtype: string)"
    return None


_INT = re.compile(r"[+-]?[0-9]+")  # what TensorFlow parses as int64 (around spaces), if in range
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _is_number(text: str) -> bool:
    """Whether TensorFlow parses `text` as a float (Python's float, less its '_' separators, plus hex)."""
    text = text.strip()
    if "_" in text:
        return False
    hexadecimal = text.lstrip("+-").lower().startswith("0x")
    try:
        float.fromhex(text) if hexadecimal else float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------
# TFRecord
# --------------------------------------------------------------------------
def _diagnose_tfrecord(config: Config, path: str) -> str | None:
    rows_per_file([path], DataFormat.TFRECORD)  # DataError for a damaged file, naming the record
    parse = tfrecord_parser(config, check_labels=False)
    records = tf.data.TFRecordDataset(path, compression_type=compression_type(path)).batch(PARSE_BATCH)
    start = 0
    for batch in records:
        found = _first_bad_record(parse, batch, label_rules(config))
        if found:
            index, why = found
            return f"{path}: record {start + index}: {why}"
        start += int(batch.shape[0])
    return None


def _bad_label(column: str, number: float, rule: LabelRule, shown: str) -> str | None:
    """Why a label column whose values meet `rule` cannot hold `number` (`shown` as read), or None."""
    if not label_ok(np.array([number]), rule)[0]:
        return f"label column {column!r}: {shown} is not {rule.value}"
    return None


def _first_bad_record(parse, batch: tf.Tensor, kinds: dict) -> tuple[int, str] | None:
    """(index in `batch`, why) of the first record that does not parse or holds a label its task refuses
    (`kinds`: label column -> its `LabelRule`)."""
    try:
        parsed = parse(batch)
        labels = {column: parsed[column].numpy() for column in kinds}
    except (tf.errors.InvalidArgumentError, ValueError):
        for i in range(int(batch.shape[0])):
            try:
                parse(batch[i : i + 1])
            except (tf.errors.InvalidArgumentError, ValueError) as err:
                reason = tf_reason(err) if isinstance(err, tf.errors.OpError) else str(err).splitlines()[0]
                return i, reason[:300]
        return None
    found = []
    for column, values in labels.items():
        bad = np.flatnonzero(~label_ok(values, kinds[column]))
        if bad.size:
            found.append((int(bad[0]), _bad_label(column, values[bad[0]], kinds[column], f"{values[bad[0]]:g}")))
    return min(found) if found else None
