"""The data files as files: which ones, compressed or not, whether they hold what the format says, how many rows.

Everything here reads bytes, not values, so it is cheap enough to run on
every file before training:

- `resolve_files` expands the config's globs (a directory matched is refused);
  `real_files` gives their real paths, `shared_files` those two keys both name;
- a name ending in `.gz` means gzip-compressed, file by file (one glob may
  mix compressed and plain files): `reader` opens each file with its own
  `compression_type`, `open_text` gunzips in Python;
- `open_text` also drops a UTF-8 byte-order mark, and refuses a file whose
  first bytes are not text (a TFRecord file given as CSV, a file compressed
  without a `.gz` suffix) with a `DataError` saying so;
- `rows_per_file` counts rows: CSV lines in bytes, less the header line
  unless `data.columns` names the columns of header-less files (a `.gz` file's whole
  gzip stream checked on the way), TFRecord records, every one read (which
  checks each record's framing and checksum, then that the records fill the
  file, or its whole gzip stream), so a corrupt, truncated or non-TFRecord
  file is named before training, with its record.
"""
from __future__ import annotations

import codecs
import glob
import gzip
import io
import os
import re
import zlib
from typing import Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.config import Config, DataFormat

GZIP_SUFFIX = ".gz"
_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 1 << 16  # bytes of a CSV file checked for being text
_CHUNK = 1 << 20
_COUNT_BATCH = 4096
_RECORD_FRAMING = 16  # bytes around each TFRecord payload: length (8), its CRC (4), the payload's CRC (4)
NOT_TEXT = "not UTF-8 text: a TFRecord file, or compressed without a .gz suffix?"
NOT_TFRECORD = "not a TFRecord file: is data.format right?"


class DataError(ValueError):
    """Input data does not match the config; the message names the file and line or column."""


def resolve_files(config: Config, key: str) -> list[str]:
    """Expands the globs of `data.train_files` / `data.eval_files`, sorted.

    DataError naming the key for a glob that matches nothing, or a directory
    (its files are not read: name them, e.g. `dir/*.csv`).
    """
    files: list[str] = []
    for i, pattern in enumerate(getattr(config.data, key)):
        path = config.resolve_path(pattern)
        matched = sorted(glob.glob(path))
        if not matched:
            raise DataError(f"data.{key}[{i}]: no file matches {path!r}")
        directories = [m for m in matched if os.path.isdir(m)]
        if directories:
            raise DataError(f"data.{key}[{i}]: {path!r} matches the directory {directories[0]}, which is not a data "
                            f"file: name its files (e.g. {os.path.join(directories[0], '*.csv')})")
        files.extend(matched)
    return files


def real_files(config: Config, key: str) -> list[str]:
    """`resolve_files`, each by its real path (symbolic links and `..` resolved): how files are compared."""
    return [os.path.realpath(p) for p in resolve_files(config, key)]


def shared_files(config: Config, key: str, other: str) -> list[str]:
    """The files of `data.<key>` that are files of `data.<other>` too, by real path, in `data.<key>`'s
    order: what must never be both (held-out and training files, validation and held-out files)."""
    theirs = set(real_files(config, other))
    return [p for p in dict.fromkeys(real_files(config, key)) if p in theirs]


# --------------------------------------------------------------------------
# Compression, by suffix
# --------------------------------------------------------------------------
def is_gzip(path: str) -> bool:
    return path.endswith(GZIP_SUFFIX)


def compression_type(path):
    """"GZIP" for a `.gz` name, else "": a str for a str, a string tensor for a tensor (inside tf.data)."""
    if isinstance(path, str):
        return "GZIP" if is_gzip(path) else ""
    return tf.where(tf.strings.regex_full_match(path, r".*\.gz"), "GZIP", "")


def reader(data_format: DataFormat, header: bool = True) -> Callable:
    """`read(path)`: the file's raw records (CSV: its lines after the header, if it has one:
    `data.header`), decompressed by suffix."""
    if data_format is DataFormat.CSV:
        skip = 1 if header else 0
        return lambda path: tf.data.TextLineDataset(path, compression_type=compression_type(path)).skip(skip)
    return lambda path: tf.data.TFRecordDataset(path, compression_type=compression_type(path))


def file_order(files: Sequence[str], data_format: DataFormat, header: bool = True) -> tf.data.Dataset:
    """Every raw record of `files`, a few files interleaved, always in the same order."""
    read = reader(data_format, header)
    return tf.data.Dataset.from_tensor_slices(list(files)).interleave(read, cycle_length=min(4, len(files)))


def check_suffix(path: str) -> None:
    """A `.gz` name must hold gzip data, and gzip data must have a `.gz` name."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if is_gzip(path) and magic != _GZIP_MAGIC and magic:
        raise DataError(f"{path}: not gzip-compressed, though its name ends in {GZIP_SUFFIX}")
    if not is_gzip(path) and magic == _GZIP_MAGIC:
        raise DataError(f"{path}: gzip-compressed, but its name does not end in {GZIP_SUFFIX}")


def _open_bytes(path: str):
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _gzip_broken(path: str, line: int) -> DataError:
    return DataError(f"{path}: line {line}: gzip data ends early or is corrupt (a truncated file?)")


# --------------------------------------------------------------------------
# CSV: text
# --------------------------------------------------------------------------
def _head(path: str) -> bytes:
    """The first bytes of the file, decompressed by suffix."""
    try:
        with _open_bytes(path) as f:
            return f.read(_SNIFF_BYTES)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise _gzip_broken(path, 1) from err


def _not_text_at(head: bytes) -> int:
    """Offset in `head` of the first byte text would not hold, or -1.

    Text holds no NUL byte (binary data of any size does), and its first line
    is UTF-8.  Later lines may hold other bytes (a Latin-1 name): TensorFlow
    reads bytes, so such a file trains, and `open_text` reads them as U+FFFD.
    """
    nul = head.find(b"\0")
    end = head.find(b"\n")
    first = head[: end if end >= 0 else len(head)]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(first, final=False)
    except UnicodeDecodeError as err:
        return min(err.start, nul) if nul >= 0 else err.start
    return nul


def check_text(path: str) -> None:
    """Raises DataError unless the file's first bytes are UTF-8 text (a CSV file, not binary)."""
    check_suffix(path)
    head = _head(path)
    bad = _not_text_at(head)
    if bad >= 0:
        line = head.count(b"\n", 0, bad) + 1
        raise DataError(f"{path}: line {line}: {NOT_TEXT}")


def open_text(path: str) -> io.TextIOWrapper:
    """The CSV file as text for the csv module: gunzipped by suffix, a byte-order mark dropped.

    DataError for a file that is not text (`check_text`); bytes that are not
    UTF-8 after its first line read as U+FFFD.
    """
    check_text(path)
    return io.TextIOWrapper(_open_bytes(path), encoding="utf-8-sig", errors="replace", newline="")


def _count_lines(path: str) -> int:
    lines, last = 0, b"\n"
    try:
        with _open_bytes(path) as f:
            while chunk := f.read(_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise _gzip_broken(path, lines + 1) from err
    return lines + (last != b"\n")  # a last line without its newline is a line too


# --------------------------------------------------------------------------
# TFRecord: framed, checksummed records
# --------------------------------------------------------------------------
def tf_reason(err: tf.errors.OpError) -> str:
    """TensorFlow's message without its function-node prefix and op suffix."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:\w+\].*$", "", text).strip()


def record_error(path: str, index: int, err: tf.errors.OpError | None = None) -> DataError:
    """The DataError for a record TensorFlow cannot read: not TFRecord at all, or damaged from `index` on."""
    if index == 0:
        text = _not_text_at(_head(path)) < 0
        return DataError(f"{path}: record 0: {NOT_TFRECORD} " + (
            "(it reads as text: a CSV file?)" if text else "(or it is damaged from its first record)"))
    why = f" ({tf_reason(err)})" if err is not None else ""
    return DataError(f"{path}: record {index}: corrupt or truncated TFRecord file{why}")


def _records_and_bytes(path) -> tuple[tf.Tensor, tf.Tensor]:
    """(records, payload bytes) of one file, read in one reduce (`path` a str or a string tensor)."""
    records = tf.data.TFRecordDataset(path, compression_type=compression_type(path))
    return _count(records, bytes_too=True)


def _count(records: tf.data.Dataset, bytes_too: bool = False):
    """Records (and their payload bytes) in `records`, a batch at a time (a reduce step per record costs 25x)."""
    zero = tf.constant(0, tf.int64)

    def add(acc, batch):
        size = tf.cast(tf.strings.length(batch), tf.int64) if bytes_too else tf.zeros([0], tf.int64)
        return acc[0] + tf.size(batch, out_type=tf.int64), acc[1] + tf.reduce_sum(size)

    count, payload = records.batch(_COUNT_BATCH).reduce((zero, zero), add)
    return (count, payload) if bytes_too else count


def _check_framing(path: str, count: int, payload: int) -> int:
    """`count`, once the file is known to hold nothing but those records (TensorFlow stops quietly
    at a tail too short to hold a record's length, and at a gzip stream cut between two records)."""
    if count * _RECORD_FRAMING + payload != (_gunzipped_size(path, count) if is_gzip(path) else os.path.getsize(path)):
        raise record_error(path, count)
    return count


def _gunzipped_size(path: str, count: int) -> int:
    size = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                size += len(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: record {count}: gzip data ends early or is corrupt (a truncated file?)") from err
    return size


def _count_records(path: str) -> int:
    """Records in one file; DataError naming the first record TensorFlow cannot read."""
    check_suffix(path)
    try:
        count, payload = _records_and_bytes(path)
    except tf.errors.DataLossError as err:
        # The records before the damaged one read fine: their number is its index.
        records = tf.data.TFRecordDataset(path, compression_type=compression_type(path))
        raise record_error(path, int(_count(records.ignore_errors())), err) from err
    return _check_framing(path, int(count), int(payload))


def _count_all_records(files: Sequence[str]) -> list[int]:
    """Records in each file, every file counted in one traced function (tracing one per file costs more)."""
    for path in files:
        check_suffix(path)
    if not files:
        return []
    counts = tf.data.Dataset.from_tensor_slices(list(files)).map(_records_and_bytes)
    try:
        found = [(int(n), int(size)) for n, size in counts]
    except tf.errors.DataLossError:
        return [_count_records(path) for path in files]  # which file, which record
    return [_check_framing(path, n, size) for path, (n, size) in zip(files, found)]


def rows_per_file(files: Sequence[str], data_format: DataFormat, header: bool = True) -> list[int]:
    """Data rows in each file (CSV: lines, after the header if `header`); DataError for a damaged or misnamed file."""
    if data_format is DataFormat.CSV:
        skip = 1 if header else 0
        return [max(_count_lines(path) - skip, 0) for path in files]
    return _count_all_records(files)


def count_rows(files: Sequence[str], data_format: DataFormat, header: bool = True) -> int:
    """Data rows in the files (header lines excluded for CSV, unless `header` is False: `data.columns`)."""
    return sum(rows_per_file(files, data_format, header))


def require_rows(files: Sequence[str], counts: Sequence[int], key: str) -> None:
    """DataError if the files of `data.<key>` hold no row at all."""
    if not sum(counts):
        raise DataError(f"data.{key}: no data rows in {', '.join(files)} (header only or empty)")


def layout(config: Config) -> tuple[DataFormat, bool]:
    """(`data.format`, whether CSV files have a header line): what `reader`, `file_order`,
    `rows_per_file` and `count_rows` take after the files."""
    return config.data.format, config.data.header
