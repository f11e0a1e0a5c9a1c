"""Bad data files give a DataError naming the file, the line (CSV, 1-based) or record (TFRecord, 0-based), the column.

Each test writes one small bad file and checks what the checks before
training (`count_training_rows`, `check_eval_split`, building the
dataset_fn), TensorFlow while reading (`make_dataset_fn` iterated) and
`diagnose` (what the trainer calls when TensorFlow stops) say about it.
"""
from __future__ import annotations

import gzip
import os
import shutil
import zlib

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from pfd_tf.names import DEFAULT_TASK
from pfd_tf import config as config_lib
from pfd_tf.data import stream
from pfd_tf.data.pipeline import (DataError, check_eval_split, count_rows, count_training_rows, diagnose,
                                  make_dataset_fn)

from conftest import COLUMNS, write_tiny_world

LABEL = COLUMNS.index("label")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
@pytest.fixture()
def world(tmp_path) -> str:
    """A tiny CSV world of its own for each test (the tests spoil its files)."""
    return write_tiny_world(str(tmp_path), rows=160)


def _train_file(world: str, k: int = 0) -> str:
    return os.path.join(os.path.dirname(world), "train", f"part-{k}.csv")


def _test_file(world: str) -> str:
    return os.path.join(os.path.dirname(world), "test", "test.csv")


def _set_field(path: str, line: int, column: int, value: str | bytes) -> None:
    """Sets field `column` of 1-based `line` of a CSV file (bytes in, bytes out)."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    fields = lines[line - 1].split(b",")
    fields[column] = value.encode() if isinstance(value, str) else value
    lines[line - 1] = b",".join(fields)
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))


def _rows(dataset) -> int:
    return sum(int(labels[DEFAULT_TASK].shape[0]) for _, labels in dataset)


def _eval_rows(config, split: str = "train") -> int:
    """Rows of `split` read once in file order, through the parse path training uses."""
    return _rows(make_dataset_fn(config, split, 16, training=False)(None))


def _load(world: str, *overrides: str):
    return config_lib.load(world, list(overrides))


def _example(user: str, price: float, label: float) -> bytes:
    feature = {
        "user": tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
        "price": tf.train.Feature(float_list=tf.train.FloatList(value=[price])),
        "label": tf.train.Feature(float_list=tf.train.FloatList(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def _write_records(path: str, labels, options=None) -> None:
    with tf.io.TFRecordWriter(path, options=options) as writer:
        for i, label in enumerate(labels):
            writer.write(_example(f"u{i % 5}", float(i), label))


def _tfrecord_config(directory: str, train: str, eval_: str | None = None):
    raw = {
        "data": {"train_files": [train], "eval_files": [eval_ or train], "label": "label", "format": "tfrecord"},
        "features": [{"name": "user", "kind": "categorical", "hash_buckets": 5, "dim": 2},
                     {"name": "price", "kind": "numeric", "boundaries": [5.0, 10.0], "dim": 2}],
        "distill": {"mode": "baseline"},
    }
    return config_lib.from_dict(raw, base_dir=directory)


# --------------------------------------------------------------------------
# 1. Every row's field count is checked: too many and too few
# --------------------------------------------------------------------------
@pytest.mark.parametrize("extra, found", [(",x", len(COLUMNS) + 1), (None, len(COLUMNS) - 1)])
def test_field_count_is_checked_both_ways(world, extra, found):
    path = _train_file(world, 1)
    with open(path) as f:
        lines = f.read().splitlines()
    lines[5] = lines[5] + extra if extra else lines[5].rsplit(",", 1)[0]  # line 6
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    config = _load(world)
    with pytest.raises(tf.errors.InvalidArgumentError):
        _eval_rows(config)
    with pytest.raises(tf.errors.InvalidArgumentError):  # the training stream too
        for _ in make_dataset_fn(config, "train", 16, training=True)(None).take(50):
            pass
    assert diagnose(config, make_dataset_fn(config, "train", 16, training=True).files) == (
        f"{path}: line 6: expected {len(COLUMNS)} fields, found {found}")


def test_a_comma_inside_quotes_is_one_field(world):
    path = _train_file(world, 0)
    _set_field(path, 2, COLUMNS.index("device"), '"ios,old"')
    config = _load(world)
    assert _eval_rows(config) == count_rows(make_dataset_fn(config, "train", 16, training=True).files,
                                            config.data.format)
    assert diagnose(config, [path]) is None


# --------------------------------------------------------------------------
# 2. Labels are 0 or 1
# --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["2", "-1", "nan", "0.5"])
def test_csv_label_not_0_or_1_stops_reading_and_is_named(world, value):
    path = _train_file(world, 0)
    _set_field(path, 4, LABEL, value)
    config = _load(world)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label column label: values not 0 or 1"):
        _eval_rows(config)
    assert diagnose(config, [_train_file(world, 1), path]) == (
        f"{path}: line 4: label column 'label': {value} is not 0 or 1")


def test_csv_labels_written_as_floats_are_fine(world):
    path = _train_file(world, 0)
    _set_field(path, 2, LABEL, "1.0")
    _set_field(path, 3, LABEL, "0.0")
    config = _load(world)
    assert diagnose(config, [path]) is None
    assert _eval_rows(config) > 0


@pytest.mark.parametrize("bad, shown", [(2.0, "2"), (float("nan"), "nan"), (-1.0, "-1")])
def test_tfrecord_label_not_0_or_1_is_named_with_its_record(tmp_path, bad, shown):
    path = str(tmp_path / "r.tfrecord")
    labels = [0.0, 1.0] * 3
    labels[4] = bad
    _write_records(path, labels)
    _write_records(str(tmp_path / "t.tfrecord"), [0.0, 1.0])
    config = _tfrecord_config(str(tmp_path), "t.tfrecord", path)  # held out, so apart from the training file
    with pytest.raises(tf.errors.InvalidArgumentError):
        _eval_rows(config, "eval")
    assert diagnose(config, [path]) == f"{path}: record 4: label column 'label': {shown} is not 0 or 1"
    with pytest.raises(DataError, match="record 4: label column 'label'"):
        check_eval_split(config)


# --------------------------------------------------------------------------
# 3. gzip by suffix, mixed in one glob
# --------------------------------------------------------------------------
def _gzip(path: str, out: str) -> None:
    with open(path, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)


def test_gzip_csv_rows_equal_the_plain_rows(world):
    plain = _load(world)
    rows = _eval_rows(plain)
    first = _train_file(world, 0)
    _gzip(first, first + ".gz")
    os.remove(first)
    config = _load(world, "data.train_files=[train/*.csv, train/*.csv.gz]")  # one plain, one compressed
    assert [os.path.basename(p) for p in make_dataset_fn(config, "train", 16, training=False).files] == [
        "part-1.csv", "part-0.csv.gz"]
    assert _eval_rows(config) == rows == count_training_rows(config)
    ids, label = next(iter(make_dataset_fn(config, "train", 16, training=True)(None)))
    assert label[DEFAULT_TASK].shape == [16]


def test_gzip_csv_bad_row_is_named_with_its_line(world):
    path = _train_file(world, 1)
    _set_field(path, 3, LABEL, "7")
    _gzip(path, path + ".gz")
    os.remove(path)
    config = _load(world, "data.train_files=[train/*]")
    with pytest.raises(tf.errors.InvalidArgumentError):
        _eval_rows(config)
    assert diagnose(config, [path + ".gz"]) == f"{path}.gz: line 3: label column 'label': 7 is not 0 or 1"


def test_gzip_tfrecord_rows_equal_the_plain_rows(tmp_path):
    labels = [0.0, 1.0, 1.0, 0.0, 1.0]
    _write_records(str(tmp_path / "a.tfrecord"), labels)
    _write_records(str(tmp_path / "b.tfrecord.gz"), labels, options="GZIP")
    plain = _tfrecord_config(str(tmp_path), "a.tfrecord")
    mixed = _tfrecord_config(str(tmp_path), "*.tfrecord*")
    assert _eval_rows(_tfrecord_config(str(tmp_path), "b.tfrecord.gz")) == _eval_rows(plain) == 5
    assert _eval_rows(mixed) == count_training_rows(mixed) == 10
    os.makedirs(tmp_path / "train")
    _write_records(str(tmp_path / "train" / "t.tfrecord"), [0.0, 1.0])
    assert check_eval_split(_tfrecord_config(str(tmp_path), "train/t.tfrecord", "*.tfrecord*"))["positives"] == 6


def test_gzip_suffix_must_match_the_bytes(world):
    path = _train_file(world, 0)
    os.rename(path, path + ".gz")  # plain text named .gz
    with pytest.raises(DataError, match=r"part-0\.csv\.gz: not gzip-compressed"):
        count_training_rows(_load(world, "data.train_files=[train/*]"))
    _gzip(path + ".gz", path)  # gzip data named .csv
    os.remove(path + ".gz")
    with pytest.raises(DataError, match=r"part-0\.csv: gzip-compressed, but its name does not end in \.gz"):
        make_dataset_fn(_load(world), "train", 16, training=True)


def test_truncated_gzip_csv_is_found_before_training(world):
    path = _train_file(world, 0)
    _gzip(path, path + ".gz")
    os.remove(path)
    with open(path + ".gz", "rb") as f:
        data = f.read()
    with open(path + ".gz", "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"part-0\.csv\.gz: line \d+: gzip data ends early"):
        count_training_rows(_load(world, "data.train_files=[train/*]"))


# --------------------------------------------------------------------------
# 4. A UTF-8 byte-order mark
# --------------------------------------------------------------------------
def test_byte_order_mark_is_dropped(world):
    rows = _eval_rows(_load(world))
    path = _train_file(world, 0)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + data)
    config = _load(world)
    assert _eval_rows(config) == rows  # the header line, mark and all, is skipped by TensorFlow
    assert diagnose(config, [path]) is None
    _set_field(path, 5, LABEL, "3")
    assert diagnose(config, [path]) == f"{path}: line 5: label column 'label': 3 is not 0 or 1"


def test_bytes_not_utf8_in_a_row_train_and_are_diagnosed(world):
    """TensorFlow reads bytes: a Latin-1 value trains (as an unknown id); only non-text files are refused."""
    path = _train_file(world, 0)
    rows = _eval_rows(_load(world))
    _set_field(path, 6, LABEL, b"5")
    _set_field(path, 3, COLUMNS.index("device"), b"caf\xe9")
    assert diagnose(_load(world), [path]) == f"{path}: line 6: label column 'label': 5 is not 0 or 1"
    _set_field(path, 6, LABEL, b"1")
    assert diagnose(_load(world), [path]) is None
    assert _eval_rows(_load(world)) == rows



# --------------------------------------------------------------------------
# 5. Wrong format, corrupt and truncated files
# --------------------------------------------------------------------------
def test_csv_given_as_tfrecord(world):
    config = _load(world, "data.format=tfrecord")
    with pytest.raises(DataError) as info:
        make_dataset_fn(config, "train", 16, training=True)
    assert str(info.value) == (f"{_train_file(world, 0)}: record 0: not a TFRecord file: is data.format right? "
                               "(it reads as text: a CSV file?)")
    with pytest.raises(DataError, match="not a TFRecord file"):
        check_eval_split(config)


def test_tiny_csv_given_as_tfrecord(tmp_path):
    """TensorFlow reads a file shorter than a record's header as no record at all, quietly."""
    path = str(tmp_path / "r.tfrecord")
    with open(path, "w") as f:
        f.write("label\n1\n")
    with pytest.raises(DataError, match=r"r\.tfrecord: record 0: not a TFRecord file"):
        count_training_rows(_tfrecord_config(str(tmp_path), path))


def test_tfrecord_given_as_csv(tmp_path, world):
    path = str(tmp_path / "part-0.csv")
    _write_records(path, [0.0, 1.0])
    config = _load(world, f"data.train_files=[{path}]")
    with pytest.raises(DataError) as info:
        make_dataset_fn(config, "train", 16, training=True)
    assert str(info.value) == f"{path}: line 1: not UTF-8 text: a TFRecord file, or compressed without a .gz suffix?"


def _damage(path: str, how: str) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "truncated":
        data = data[:-5]
    else:  # a flipped byte in the payload of record 3 (all records have one size here)
        size = len(data) // 6
        data[3 * size + 14] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("how, record", [("truncated", 5), ("corrupt", 3)])
def test_damaged_tfrecord_is_named_with_its_record_before_training(tmp_path, how, record):
    path = str(tmp_path / "r.tfrecord")
    _write_records(path, [0.0, 1.0] * 3)
    _damage(path, how)
    config = _tfrecord_config(str(tmp_path), path)
    with pytest.raises(DataError, match=rf"r\.tfrecord: record {record}: corrupt or truncated TFRecord"):
        count_training_rows(config)
    with pytest.raises(DataError, match=rf"record {record}"):
        make_dataset_fn(config, "train", 4, training=True)
    # A file damaged after the checks: TensorFlow stops with DataLossError, diagnose names the record.
    with pytest.raises(tf.errors.DataLossError):
        _rows(make_dataset_fn(config, "eval", 4, training=False)(None))
    assert diagnose(config, [path]).startswith(f"{path}: record {record}: corrupt or truncated TFRecord")


def test_gzip_tfrecord_cut_inside_a_record(tmp_path):
    path = str(tmp_path / "r.tfrecord.gz")
    _write_records(path, [0.0, 1.0] * 200, options="GZIP")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"r\.tfrecord\.gz: record \d+: corrupt or truncated TFRecord"):
        count_training_rows(_tfrecord_config(str(tmp_path), path))


def test_gzip_tfrecord_cut_between_two_records(tmp_path):
    """TensorFlow reads the records before the cut and stops without an error; the check does not."""
    plain = str(tmp_path / "plain.tfrecord")
    _write_records(plain, [0.0, 1.0] * 5)
    with open(plain, "rb") as f:
        data = f.read()
    gz = zlib.compressobj(wbits=31)  # a gzip stream of the first 4 records, flushed, never finished
    cut = gz.compress(data[: 4 * len(data) // 10]) + gz.flush(zlib.Z_FULL_FLUSH)
    path = str(tmp_path / "r.tfrecord.gz")
    with open(path, "wb") as f:
        f.write(cut)
    config = _tfrecord_config(str(tmp_path), path)
    assert _eval_rows(config) == 4
    with pytest.raises(DataError, match=r"r\.tfrecord\.gz: record 4: gzip data ends early"):
        count_training_rows(config)


def test_trailing_bytes_after_the_last_record(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    _write_records(path, [0.0, 1.0])
    with open(path, "ab") as f:
        f.write(b"junk")
    with pytest.raises(DataError, match=r"record 2: corrupt or truncated"):
        count_training_rows(_tfrecord_config(str(tmp_path), path))


def test_records_that_are_not_examples(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"\xff\xfe not a proto")
    with pytest.raises(DataError, match=r"record 0: not a serialized tf.train.Example"):
        count_training_rows(_tfrecord_config(str(tmp_path), path))


# --------------------------------------------------------------------------
# 6. No training rows
# --------------------------------------------------------------------------
def test_training_files_with_a_header_only(world):
    for k in (0, 1):
        with open(_train_file(world, k), "w") as f:
            f.write(",".join(COLUMNS) + "\n")
    config = _load(world)
    for check in (count_training_rows, lambda c: make_dataset_fn(c, "train", 16, training=True)):
        with pytest.raises(DataError) as info:
            check(config)
        message = str(info.value)
        assert message.startswith("data.train_files: no data rows in ")
        assert _train_file(world, 0) in message and _train_file(world, 1) in message
    with pytest.raises(DataError, match="data.train_files: no data rows"):
        make_dataset_fn(_load(world, "data.cache=true"), "train", 16, training=True)


def test_an_empty_stream_is_refused_not_read_forever():
    with pytest.raises(ValueError, match="no training rows"):
        stream.local_records(["a.csv"], tf.data.TextLineDataset, 0, 0, 0, 16)


def test_empty_tfrecord_training_file(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    _write_records(path, [])
    with pytest.raises(DataError, match="data.train_files: no data rows in"):
        count_training_rows(_tfrecord_config(str(tmp_path), path))


# --------------------------------------------------------------------------
# 7. The held-out split, checked before training
# --------------------------------------------------------------------------
def test_check_eval_split_counts_rows_and_classes(world):
    config = _load(world)
    path = _test_file(world)
    with open(path) as f:
        labels = [int(line.rsplit(",", 1)[1]) for line in f.read().splitlines()[1:]]
    assert check_eval_split(config) == {"files": [path], "rows": len(labels), "positives": sum(labels),
                                        "negatives": len(labels) - sum(labels)}
    assert count_training_rows(config) == make_dataset_fn(config, "train", 16, training=True).rows


@pytest.mark.parametrize("column, value, why", [
    ("price", "cheap", "column 'price': 'cheap' is not a number"),
    ("label", "2", "label column 'label': 2 is not 0 or 1"),
    ("label", "", "label column 'label' is empty"),
])
def test_check_eval_split_names_the_bad_held_out_row(world, column, value, why):
    path = _test_file(world)
    _set_field(path, 3, COLUMNS.index(column), value)
    with pytest.raises(DataError) as info:
        check_eval_split(_load(world))
    assert str(info.value) == f"{path}: line 3: {why}"
    assert isinstance(info.value.__cause__, tf.errors.InvalidArgumentError)


@pytest.mark.parametrize("column, value, why, overrides", [
    ("price", "1_0", "column 'price': '1_0' is not a number", []),
    ("user_id", "1_0", "column 'user_id': '1_0' is not an integer id", ["features.user_id.dtype=int64"]),
    ("user_id", "7.0", "column 'user_id': '7.0' is not an integer id", ["features.user_id.dtype=int64"]),
    ("user_id", "9223372036854775808", "column 'user_id': 9223372036854775808 does not fit in int64 (dtype: int64; "
     "hash it as dtype: string)", ["features.user_id.dtype=int64"]),
    ("tags", "3|-9223372036854775809", "column 'tags': -9223372036854775809 does not fit in int64",
     ["features.tags.dtype=int64"]),
])
def test_diagnose_reads_numbers_and_ids_as_tensorflow_does(world, column, value, why, overrides):
    """What TensorFlow refuses is named (Python alone would read '1_0' as 10 and any integer as an int64),
    and what it reads is not: hexadecimal, signs and spaces around a number (line 2) pass."""
    path = _test_file(world)
    _set_field(path, 2, COLUMNS.index("price"), " 0x1p3 ")
    _set_field(path, 2, COLUMNS.index("user_id"), "+7")
    _set_field(path, 4, COLUMNS.index(column), value)
    with pytest.raises(DataError) as info:
        check_eval_split(_load(world, *overrides))
    assert str(info.value).startswith(f"{path}: line 4: {why}")


def test_check_eval_split_field_count(world):
    path = _test_file(world)
    with open(path, "a") as f:
        f.write("4,1,2,ios,3.5,,1.0,0,1,extra\n")
    with open(path) as f:
        line = len(f.read().splitlines())
    with pytest.raises(DataError, match=rf"test\.csv: line {line}: expected {len(COLUMNS)} fields, found 10"):
        check_eval_split(_load(world))


def test_check_eval_split_one_class_and_no_rows(world):
    path = _test_file(world)
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join([lines[0]] + [",".join(line.split(",")[:-1] + ["0"]) for line in lines[1:]]) + "\n")
    summary = check_eval_split(_load(world))
    assert summary["positives"] == 0 and summary["negatives"] == summary["rows"] == len(lines) - 1
    with open(path, "w") as f:
        f.write(lines[0] + "\n")
    with pytest.raises(DataError, match=r"data.eval_files: no data rows in .*test\.csv"):
        check_eval_split(_load(world))


def test_training_rows_counted_once_can_be_handed_on(world):
    config = _load(world)
    first = make_dataset_fn(config, "train", 16, training=True)
    again = make_dataset_fn(config, "train", 16, training=True, start_step=3, rows_per_file=first.rows_per_file)
    assert again.rows == first.rows == sum(first.rows_per_file)
    tail = [labels[DEFAULT_TASK].numpy() for _, labels in again(None).take(2)]
    whole = [labels[DEFAULT_TASK].numpy() for _, labels in first(None).take(5)]
    np.testing.assert_array_equal(np.concatenate(tail), np.concatenate(whole[3:]))
