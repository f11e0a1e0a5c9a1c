"""Behavioural tests of the tf.data pipeline: parsing, encoding, sharding, TFRecord, bad input."""
from __future__ import annotations

import dataclasses

import csv
import glob
import os

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from pfd_tf import config as config_lib
from pfd_tf.names import DEFAULT_TASK
from pfd_tf.config import FeatureKind
from pfd_tf.data.pipeline import DataError, count_rows, diagnose, eval_steps, make_dataset_fn
from pfd_tf.features import PAD_ID, FeatureEncoder, vocabulary_size

from conftest import COLUMNS, write_tiny_world


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> str:
    """A tiny world private to this module (tests here never modify it)."""
    return write_tiny_world(str(tmp_path_factory.mktemp("pipeline_world")), rows=600)


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _write_csv(path: str, header, rows) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")


def _collect(dataset) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Concatenates every batch of a finite dataset."""
    ids: dict[str, list] = {}
    labels = []
    for batch_ids, batch_labels in dataset:
        for name, value in batch_ids.items():
            ids.setdefault(name, []).append(value.numpy())
        assert set(batch_labels) == {DEFAULT_TASK}  # data.label: the one task, `main`
        labels.append(batch_labels[DEFAULT_TASK].numpy())
    return {k: np.concatenate(v) for k, v in ids.items()}, np.concatenate(labels)


def _raw_config(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _config(raw: dict, base_dir: str):
    return config_lib.from_dict(raw, base_dir=base_dir)


# A small world with a row-id column: the numeric feature `rid` has boundaries
# 0.5, 1.5, ..., so its bucket id is the row id itself.
def _rid_world(directory: str, files: int, rows_per_file: int) -> config_lib.Config:
    total = files * rows_per_file
    for k in range(files):
        rows = [(k * rows_per_file + j, f"u{j % 7}", (k * rows_per_file + j) % 2) for j in range(rows_per_file)]
        _write_csv(os.path.join(directory, "parts", f"part-{k}.csv"), ["rid", "user", "label"], rows)
    raw = {
        "data": {"train_files": ["parts/*.csv"], "eval_files": ["parts/*.csv"], "label": "label",
                 "shuffle_buffer": 16},
        "features": [
            {"name": "rid", "kind": "numeric", "boundaries": [i + 0.5 for i in range(total)], "dim": 2},
            {"name": "user", "kind": "categorical", "hash_buckets": 10, "dim": 2},
        ],
        "distill": {"mode": "baseline"},
    }
    return _config(raw, directory)


def _rids(dataset) -> list[int]:
    ids, labels = _collect(dataset)
    rids = ids["rid"].tolist()
    assert labels.tolist() == [r % 2 for r in rids]  # label travels with its row
    return rids


# --------------------------------------------------------------------------
# Batches from the tiny world
# --------------------------------------------------------------------------
def test_training_batches_have_every_feature_in_range(world):
    config = config_lib.load(world)
    batch = 32
    dataset = make_dataset_fn(config, "train", batch, training=True)(None)
    seen_nonzero_tags = False
    for ids, label in dataset.take(5):
        assert set(ids) == {f.name for f in config.features}
        for spec in config.features:
            value = ids[spec.name]
            assert value.dtype == tf.int64, spec.name
            expected_shape = [batch, spec.max_len] if spec.kind is FeatureKind.SEQUENCE else [batch]
            assert value.shape.as_list() == expected_shape, spec.name
            v = value.numpy()
            assert v.min() >= 0 and v.max() < vocabulary_size(spec), spec.name
        seen_nonzero_tags |= bool((ids["tags"].numpy() != PAD_ID).any())
        assert set(label) == {DEFAULT_TASK}
        label = label[DEFAULT_TASK]
        assert label.dtype == tf.float32
        assert label.shape.as_list() == [batch]
        assert set(np.unique(label.numpy())) <= {0.0, 1.0}
    assert seen_nonzero_tags


def test_training_dataset_repeats_forever(world):
    config = config_lib.load(world)
    rows = count_rows(make_dataset_fn(config, "train", 64, training=True).files, config.data.format)
    dataset = make_dataset_fn(config, "train", 64, training=True)(None)
    steps = rows // 64 * 2 + 3  # more than two passes over the data
    assert sum(1 for _ in dataset.take(steps)) == steps


def test_evaluation_reads_every_test_row_once_in_order(world):
    config = config_lib.load(world)
    dataset_fn = make_dataset_fn(config, "eval", 50, training=False)
    assert dataset_fn.files == [os.path.join(config.base_dir, "test", "test.csv")]
    header, rows = _read_csv(dataset_fn.files[0])
    assert count_rows(dataset_fn.files, config.data.format) == len(rows)
    ids, labels = _collect(dataset_fn(None))
    assert len(labels) == len(rows)
    column = {name: [row[header.index(name)] for row in rows] for name in header}
    np.testing.assert_array_equal(labels, np.array(column["label"], dtype=np.float32))
    price = np.array(column["price"], dtype=np.float32)
    np.testing.assert_array_equal(ids["price"], np.digitize(price, config.feature("price").boundaries))
    device = {"ios": 1, "android": 2, "pc": 3}  # vocabulary order, after the OOV id 0
    np.testing.assert_array_equal(ids["device"], [device[v] for v in column["device"]])
    # Rows with no tags are all padding, the others have as many ids as tags (up to max_len).
    tag_counts = [min(len(t.split("|")), 4) if t else 0 for t in column["tags"]]
    np.testing.assert_array_equal((ids["tags"] != PAD_ID).sum(axis=1), tag_counts)
    # Last batch is partial, not dropped.
    assert eval_steps(config, dataset_fn.files) == -(-len(rows) // config.train.eval_batch_size)


def test_evaluation_of_train_files_reads_each_row_once(world):
    config = config_lib.load(world)
    dataset_fn = make_dataset_fn(config, "train", 64, training=False)
    assert len(dataset_fn.files) == 2
    expected = sum(len(_read_csv(p)[1]) for p in dataset_fn.files)
    _, labels = _collect(dataset_fn(None))
    assert len(labels) == expected
    assert labels.sum() == sum(int(r[-1]) for p in dataset_fn.files for r in _read_csv(p)[1])


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------
@pytest.fixture()
def encoding_config(tmp_path):
    rows = [
        # tags          vtags       device     price   cart  label
        ("3|7",         "a|b",      "ios",     "4.99", "0",  1),
        ("",            "",         "pc",      "5",    "1",  0),
        ("1|2|3|4|5|6", "a|zz|b|c", "tablet",  "5.01", "0",  1),
        ("9",           "zz",       "android", "80",   "1",  0),
        ("3|7|3",       "b|a",      "",        "1000", "0",  1),
        ("7",           "c",        "ios",     "",     "0",  0),
        ("3",           "a",        "ios",     "-3",   "2",  1),
    ]
    header = ["tags", "vtags", "device", "price", "cart", "label"]
    _write_csv(str(tmp_path / "test.csv"), header, rows)
    raw = {
        "data": {"train_files": ["test.csv"], "eval_files": ["test.csv"], "label": "label"},
        "features": [
            {"name": "tags", "kind": "sequence", "hash_buckets": 20, "max_len": 4, "dim": 2},
            {"name": "vtags", "kind": "sequence", "vocabulary": ["a", "b", "c"], "max_len": 3, "dim": 2},
            {"name": "device", "kind": "categorical", "vocabulary": ["ios", "android", "pc"], "dim": 2},
            {"name": "price", "kind": "numeric", "boundaries": [5.0, 10.0, 20.0, 40.0, 80.0], "dim": 2,
             "default": 12.0},
            {"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 2, "role": "privileged"},
        ],
    }
    config = _config(raw, str(tmp_path))
    ids, labels = _collect(make_dataset_fn(config, "eval", 3, training=False)(None))
    return config, rows, ids, labels


def test_sequence_padding_and_truncation(encoding_config):
    config, rows, ids, labels = encoding_config
    tags = ids["tags"]
    assert tags.shape == (len(rows), 4)
    # "3|7": two real ids, then padding.
    assert (tags[0, :2] != PAD_ID).all() and (tags[0, 2:] == PAD_ID).all()
    assert tags[0, 0] != tags[0, 1]
    # Empty string: all padding.
    assert (tags[1] == PAD_ID).all()
    # Six ids truncated to max_len=4, keeping the first four.
    assert (tags[2] != PAD_ID).all()
    # The same raw id always gets the same embedding id, wherever it sits.
    three, seven = tags[0, 0], tags[0, 1]
    assert tags[4, :3].tolist() == [three, seven, three] and tags[4, 3] == PAD_ID
    assert tags[5, 0] == seven and tags[6, 0] == three
    assert tags[2, 2] == three
    # Hashed sequence ids live in 1..hash_buckets (0 is the padding id).
    assert tags.max() < vocabulary_size(config.feature("tags")) == 21
    np.testing.assert_array_equal(labels, [r[-1] for r in rows])


def test_vocabulary_sequence_ids_and_oov(encoding_config):
    config, rows, ids, _ = encoding_config
    vtags = ids["vtags"]
    # mask "" -> 0, OOV -> 1, vocabulary from 2 on.
    a, b, c, oov = 2, 3, 4, 1
    assert vtags.tolist() == [
        [a, b, PAD_ID],
        [PAD_ID, PAD_ID, PAD_ID],
        [a, oov, b],  # truncated to 3, "zz" is out of vocabulary
        [oov, PAD_ID, PAD_ID],
        [b, a, PAD_ID],
        [c, PAD_ID, PAD_ID],
        [a, PAD_ID, PAD_ID],
    ]
    assert vocabulary_size(config.feature("vtags")) == 5


def test_categorical_vocabulary_oov(encoding_config):
    config, rows, ids, _ = encoding_config
    # No mask for categoricals: OOV -> 0, vocabulary from 1 on; "" and "tablet" are OOV.
    assert ids["device"].tolist() == [1, 3, 0, 2, 0, 1, 1]
    assert ids["cart"].tolist() == [1, 2, 1, 2, 1, 1, 0]  # "2" is not in the vocabulary
    assert vocabulary_size(config.feature("device")) == 4
    assert ids["device"].max() < vocabulary_size(config.feature("device"))


def test_numeric_buckets_follow_discretization(encoding_config):
    config, rows, ids, _ = encoding_config
    boundaries = config.feature("price").boundaries
    # Empty field -> the feature's default (12.0).
    values = np.array([12.0 if r[3] == "" else float(r[3]) for r in rows], dtype=np.float32)
    expected = np.digitize(values, boundaries)  # bucket i: boundaries[i-1] <= x < boundaries[i]
    assert ids["price"].tolist() == expected.tolist()
    # Spelled out: just below / at / just above 5, at 80, beyond, default, negative.
    assert ids["price"].tolist() == [0, 1, 1, 5, 5, 2, 0]
    assert vocabulary_size(config.feature("price")) == 6


def test_encoder_directly_matches_pipeline(encoding_config):
    config, rows, ids, _ = encoding_config
    encoder = FeatureEncoder(config.features)
    raw = {
        "tags": tf.constant([["3", "7", "", ""]]),
        "vtags": tf.constant([["a", "b", ""]]),
        "device": tf.constant(["ios"]),
        "price": tf.constant([4.99]),
        "cart": tf.constant(["0"]),
    }
    out = encoder(raw)
    for name in raw:
        assert out[name].dtype == tf.int64
        np.testing.assert_array_equal(out[name].numpy()[0], ids[name][0])


def test_int64_categorical_ids(tmp_path):
    _write_csv(str(tmp_path / "d.csv"), ["level", "label"], [(1, 0), (2, 1), (7, 0), ("", 1), (2, 0)])
    raw = {
        "data": {"train_files": ["d.csv"], "eval_files": ["d.csv"], "label": "label"},
        "features": [{"name": "level", "kind": "categorical", "dtype": "int64",
                      "vocabulary": [1, 2, 3], "dim": 2}],
        "distill": {"mode": "baseline"},
    }
    ids, _ = _collect(make_dataset_fn(_config(raw, str(tmp_path)), "eval", 2, training=False)(None))
    # 1 -> 1, 2 -> 2, 7 -> OOV, empty -> default -1 -> OOV.
    assert ids["level"].tolist() == [1, 2, 0, 0, 2]


def test_int64_sequence_with_empty_field(tmp_path):
    _write_csv(str(tmp_path / "d.csv"), ["hist", "label"], [("3|7", 0), ("", 1), ("5|6|7|8", 0)])
    raw = {
        "data": {"train_files": ["d.csv"], "eval_files": ["d.csv"], "label": "label"},
        "features": [{"name": "hist", "kind": "sequence", "dtype": "int64", "hash_buckets": 10,
                      "max_len": 3, "dim": 2}],
        "distill": {"mode": "baseline"},
    }
    ids, _ = _collect(make_dataset_fn(_config(raw, str(tmp_path)), "eval", 3, training=False)(None))
    hist = ids["hist"]
    assert (hist[0, :2] != PAD_ID).all() and hist[0, 2] == PAD_ID
    assert (hist[1] == PAD_ID).all()
    assert (hist[2] != PAD_ID).all()


def test_int64_sequence_without_empty_fields(tmp_path):
    _write_csv(str(tmp_path / "d.csv"), ["hist", "label"], [("3|7", 0), ("0", 1), ("5|6|7|8", 0)])
    raw = {
        "data": {"train_files": ["d.csv"], "eval_files": ["d.csv"], "label": "label"},
        "features": [{"name": "hist", "kind": "sequence", "dtype": "int64", "hash_buckets": 10,
                      "max_len": 3, "dim": 2}],
        "distill": {"mode": "baseline"},
    }
    ids, _ = _collect(make_dataset_fn(_config(raw, str(tmp_path)), "eval", 3, training=False)(None))
    hist = ids["hist"]
    assert (hist[0, :2] != PAD_ID).all() and hist[0, 2] == PAD_ID
    assert hist[1, 0] != PAD_ID and (hist[1, 1:] == PAD_ID).all()  # id 0 is a real id, not padding
    assert (hist[2] != PAD_ID).all()
    assert hist.max() <= 10


# --------------------------------------------------------------------------
# The training stream: each row once per epoch, from any step
# --------------------------------------------------------------------------
def _stream_rids(config, batch: int, steps: int, start_step: int = 0) -> list[int]:
    dataset = make_dataset_fn(config, "train", batch, training=True, start_step=start_step)(None)
    rids = []
    for ids, labels in dataset.take(steps):
        rids.extend(ids["rid"].numpy().tolist())
        assert labels[DEFAULT_TASK].numpy().tolist() == [r % 2 for r in ids["rid"].numpy().tolist()]
    return rids


def test_each_row_once_per_epoch_epochs_in_sequence(tmp_path):
    config = _rid_world(str(tmp_path), files=3, rows_per_file=16)  # 48 rows: 6 batches of 8 per epoch
    rids = _stream_rids(config, 8, 18)
    for epoch in range(3):
        assert sorted(rids[48 * epoch:48 * (epoch + 1)]) == list(range(48)), epoch
    assert rids[:48] != rids[48:96]  # every epoch its own order


def test_batches_cross_epoch_boundaries_and_drop_nothing(tmp_path):
    config = _rid_world(str(tmp_path), files=2, rows_per_file=10)  # 20 rows, batches of 8
    rids = _stream_rids(config, 8, 5)  # 40 rows: two epochs exactly
    assert sorted(rids[:20]) == list(range(20)) and sorted(rids[20:]) == list(range(20))


@pytest.mark.parametrize("cache", [False, True])
def test_the_stream_from_step_s_is_the_tail_of_the_stream_from_0(tmp_path, cache):
    """What a resumed run, or the remainder `fit` call, reads: on, not the first batches again."""
    config = _rid_world(str(tmp_path), files=3, rows_per_file=16)
    if cache:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, cache=True))
    whole = _stream_rids(config, 8, 20)
    for start in (1, 5, 6, 13):
        assert _stream_rids(config, 8, 20 - start, start_step=start) == whole[8 * start:], start


def test_the_stream_is_fixed_by_the_seed(tmp_path):
    config = _rid_world(str(tmp_path), files=3, rows_per_file=16)
    other = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=1))
    assert _stream_rids(config, 8, 6) == _stream_rids(config, 8, 6)
    assert _stream_rids(config, 8, 6) != _stream_rids(other, 8, 6)


def test_cluster_blocks_start_at_the_first_block_not_consumed():
    from pfd_tf.data.stream import PADDING, cluster_batches, cluster_blocks, epoch_order

    rows = [10, 20, 30]  # 60 rows per epoch
    order = [epoch_order(3, 0, e).numpy().tolist() for e in range(4)]
    plan = cluster_blocks(rows, seed=0, start_row=0, end_row=120, margin_rows=5)
    # Two epochs, the margin (the next block's first 5 rows), then the overflow: the epoch after, whole.
    assert plan.run == tuple((i, e, 0, -1, False) for e in (0, 1) for i in order[e]) + ((order[2][0], 2, 0, 5, True),)
    assert plan.overflow == tuple((i, 3, 0, -1, True) for i in order[3])
    # From row 75 (epoch 1, 15 rows in): skip epoch 0 and the blocks of epoch 1 wholly before row 15.
    plan = cluster_blocks(rows, seed=0, start_row=75, end_row=120)
    done, kept = 0, []
    for index in order[1]:
        done += rows[index]
        if done > 15:
            kept.append(index)
    assert plan.run == tuple((i, 1, 0, -1, False) for i in kept)
    assert plan.overflow == tuple((i, 3, 0, -1, True) for i in order[3])  # after the epoch the run ends at
    # A fit call ending at row 100 (epoch 1, 40 rows in): its block and one each side are sent fine.
    plan = cluster_blocks(rows, seed=0, start_row=0, end_row=120, fit_ends=[100], near=1)
    at = 3 + next(k for k in range(3) if sum(rows[i] for i in order[1][:k + 1]) > 40)  # in epoch 1's blocks
    assert {k for k, block in enumerate(plan.run) if block[4]} == {k for k in (at - 1, at, at + 1) if k < 6}

    # Padding (the grouped stream's drain): after the margin, before the overflow, `padding_rows` empty elements a
    # block; the row stream, which has no empty element, refuses it.
    plan = cluster_blocks(rows, seed=0, start_row=0, end_row=120, margin_rows=5, padding_blocks=3, padding_rows=7)
    assert plan.run[-4:] == ((order[2][0], 2, 0, 5, True),) + ((PADDING, 2, 0, 7, True),) * 3
    assert plan.overflow == tuple((i, 3, 0, -1, True) for i in order[3])
    with pytest.raises(ValueError, match="padding blocks need block_elements"):
        cluster_batches(["a", "b", "c"], tf.data.TextLineDataset, 0, plan, 8, 5, 0)

def test_cluster_chunks_read_their_blocks_rows_in_the_same_order(tmp_path):
    """The run's last blocks, cut into chunks (`skip`, `take`), read what the whole blocks read, in order,
    across shuffle windows (8 rows) that chunks (6 rows) start inside of."""
    from pfd_tf.data.stream import cluster_batches, cluster_blocks

    rows = [37, 20, 30]
    files = []
    for k, n in enumerate(rows):
        files.append(str(tmp_path / f"{k}.txt"))
        with open(files[-1], "w") as f:
            f.write("".join(f"{k}-{j}\n" for j in range(n)))

    def read(plan):
        batches = cluster_batches(files, tf.data.TextLineDataset, 3, plan, shuffle_buffer=8, element_rows=5,
                                  overflow_delay_seconds=0)
        return [row.decode() for batch in batches.take(25) for row in batch.numpy()][:87]

    whole = cluster_blocks(rows, 3, 0, 87)
    chunked = cluster_blocks(rows, 3, 0, 87, tail_blocks=2, chunk_rows=6)
    assert [block[3] for block in chunked.run[1:]] == [6] * 5 + [6, 6, 6, 2]
    assert read(chunked) == read(whole) and len(set(read(whole))) == 87


def test_eval_data_is_read_once_in_order(tmp_path):
    config = _rid_world(str(tmp_path), files=2, rows_per_file=13)
    dataset_fn = make_dataset_fn(config, "eval", 4, training=False)
    assert sorted(_rids(dataset_fn(None))) == list(range(26))
    assert _rids(dataset_fn(None)) == _rids(dataset_fn(None))


# --------------------------------------------------------------------------
# TFRecord
# --------------------------------------------------------------------------
def _csv_to_tfrecord(csv_path: str, out_path: str, sequences=("tags",), strings=("user_id", "item_id", "device", "cart")):
    header, rows = _read_csv(csv_path)
    with tf.io.TFRecordWriter(out_path) as writer:
        for row in rows:
            feature = {}
            for name, value in zip(header, row):
                if name in sequences:
                    parts = [p.encode() for p in value.split("|")] if value else []
                    if not parts:
                        continue  # an empty sequence may be left out of the record
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=parts))
                elif name in strings:
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
                else:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return len(rows)


@pytest.fixture(scope="module")
def tfrecord_world(world):
    base = os.path.dirname(world)
    for csv_path in glob.glob(os.path.join(base, "train", "*.csv")) + glob.glob(os.path.join(base, "test", "*.csv")):
        out = os.path.join(base, "records", os.path.relpath(csv_path, base).replace(".csv", ".tfrecord"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        _csv_to_tfrecord(csv_path, out)
    raw = _raw_config(world)
    raw["data"].update(format="tfrecord", train_files=["records/train/*.tfrecord"],
                       eval_files=["records/test/*.tfrecord"])
    return config_lib.from_dict(raw, base_dir=base)


@pytest.mark.parametrize("split", ["eval", "train"])
def test_tfrecord_batches_equal_csv_batches(world, tfrecord_world, split):
    csv_config = config_lib.load(world)
    csv_fn = make_dataset_fn(csv_config, split, 40, training=False)
    tfr_fn = make_dataset_fn(tfrecord_world, split, 40, training=False)
    assert [os.path.basename(p).split(".")[0] for p in csv_fn.files] == [
        os.path.basename(p).split(".")[0] for p in tfr_fn.files
    ]
    assert count_rows(tfr_fn.files, tfrecord_world.data.format) == count_rows(csv_fn.files, csv_config.data.format)
    csv_batches = list(csv_fn(None))
    tfr_batches = list(tfr_fn(None))
    assert len(csv_batches) == len(tfr_batches) > 1
    for (csv_ids, csv_label), (tfr_ids, tfr_label) in zip(csv_batches, tfr_batches):
        assert set(csv_ids) == set(tfr_ids)
        for name in csv_ids:
            assert tfr_ids[name].dtype == tf.int64
            assert tfr_ids[name].shape == csv_ids[name].shape, name
            np.testing.assert_array_equal(tfr_ids[name].numpy(), csv_ids[name].numpy(), err_msg=name)
        assert set(tfr_label) == set(csv_label) == {DEFAULT_TASK}
        np.testing.assert_array_equal(tfr_label[DEFAULT_TASK].numpy(), csv_label[DEFAULT_TASK].numpy())


def test_tfrecord_long_sequences_are_truncated(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for tags in (["1", "2", "3", "4", "5", "6"], ["1"], []):
            feature = {"label": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0])),
                       "user": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"u"]))}
            if tags:
                feature["tags"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode() for t in tags]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    raw = {
        "data": {"train_files": ["r.tfrecord"], "eval_files": ["r.tfrecord"], "label": "label", "format": "tfrecord"},
        "features": [{"name": "user", "kind": "categorical", "hash_buckets": 5, "dim": 2},
                     {"name": "tags", "kind": "sequence", "hash_buckets": 20, "max_len": 4, "dim": 2}],
        "distill": {"mode": "baseline"},
    }
    ids, _ = _collect(make_dataset_fn(_config(raw, str(tmp_path)), "eval", 3, training=False)(None))
    tags = ids["tags"]
    assert tags.shape == (3, 4)
    assert (tags[0] != PAD_ID).all()
    assert tags[1, 0] == tags[0, 0] and (tags[1, 1:] == PAD_ID).all()
    assert (tags[2] == PAD_ID).all()


def test_tfrecord_missing_column(tmp_path, world):
    path = str(tmp_path / "r.tfrecord")
    _csv_to_tfrecord(os.path.join(os.path.dirname(world), "test", "test.csv"), path)
    raw = _raw_config(world)
    raw["data"].update(format="tfrecord", train_files=[path], eval_files=[path])
    raw["features"].append({"name": "brand", "kind": "categorical", "hash_buckets": 3, "dim": 2})
    with pytest.raises(DataError) as info:
        make_dataset_fn(_config(raw, str(tmp_path)), "eval", 8, training=False)
    assert path in str(info.value) and "'brand'" in str(info.value)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
@pytest.fixture()
def fresh_world(tmp_path) -> str:
    return write_tiny_world(str(tmp_path), rows=200)


def _train_file(config_path: str, k: int = 1) -> str:
    return os.path.join(os.path.dirname(config_path), "train", f"part-{k}.csv")


def test_missing_column_names_file_and_column(fresh_world):
    path = _train_file(fresh_world)
    header, rows = _read_csv(path)
    drop = header.index("dwell")
    _write_csv(path, [h for h in header if h != "dwell"], [[v for j, v in enumerate(r) if j != drop] for r in rows])
    config = config_lib.load(fresh_world)
    with pytest.raises(DataError) as info:
        make_dataset_fn(config, "train", 8, training=True)
    message = str(info.value)
    assert path in message
    assert "'dwell'" in message
    # The eval files are fine.
    make_dataset_fn(config, "eval", 8, training=False)


def test_missing_label_column(fresh_world):
    path = os.path.join(os.path.dirname(fresh_world), "test", "test.csv")
    header, rows = _read_csv(path)
    _write_csv(path, ["outcome" if h == "label" else h for h in header], rows)
    with pytest.raises(DataError) as info:
        make_dataset_fn(config_lib.load(fresh_world), "eval", 8, training=False)
    assert path in str(info.value) and "'label'" in str(info.value)


def test_different_header_names_file(fresh_world):
    path = _train_file(fresh_world, 1)
    header, rows = _read_csv(path)
    order = list(reversed(range(len(header))))
    _write_csv(path, [header[j] for j in order], [[r[j] for j in order] for r in rows])
    with pytest.raises(DataError) as info:
        make_dataset_fn(config_lib.load(fresh_world), "train", 8, training=True)
    message = str(info.value)
    assert path in message
    assert "header" in message


def test_empty_file_names_file(fresh_world):
    path = _train_file(fresh_world, 0)
    open(path, "w").close()
    with pytest.raises(DataError) as info:
        make_dataset_fn(config_lib.load(fresh_world), "train", 8, training=True)
    assert path in str(info.value)


def test_glob_matching_nothing(fresh_world):
    config = config_lib.load(fresh_world, ["data.train_files=[nowhere/*.csv]"])
    with pytest.raises(DataError) as info:
        make_dataset_fn(config, "train", 8, training=True)
    assert "data.train_files[0]" in str(info.value)
    assert "nowhere" in str(info.value)
    config = config_lib.load(fresh_world, ["data.eval_files=[test/*.csv, none/*.csv]"])
    with pytest.raises(DataError, match=r"data\.eval_files\[1\]"):
        make_dataset_fn(config, "eval", 8, training=False)


def _replace_line(path: str, line: int, transform) -> str:
    """Rewrites 1-based `line` of `path` with transform(fields); returns the old line."""
    with open(path) as f:
        lines = f.read().splitlines()
    old = lines[line - 1]
    lines[line - 1] = ",".join(transform(old.split(",")))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return old


def test_diagnose_clean_files_is_none(fresh_world):
    config = config_lib.load(fresh_world)
    files = make_dataset_fn(config, "train", 8, training=True).files
    assert diagnose(config, files) is None


def test_diagnose_short_row(fresh_world):
    config = config_lib.load(fresh_world)
    path = _train_file(fresh_world, 1)
    _replace_line(path, 5, lambda f: f[:-1])
    files = make_dataset_fn(config, "train", 8, training=True).files
    message = diagnose(config, files)
    assert message is not None
    assert path in message
    assert "line 5" in message
    assert f"expected {len(COLUMNS)} fields, found {len(COLUMNS) - 1}" in message
    # TensorFlow itself refuses the row (what makes the trainer call diagnose).
    with pytest.raises(tf.errors.InvalidArgumentError):
        _collect(make_dataset_fn(config, "train", 8, training=False)(None))


def test_diagnose_non_numeric_value(fresh_world):
    config = config_lib.load(fresh_world)
    path = _train_file(fresh_world, 0)
    price = COLUMNS.index("price")
    _replace_line(path, 7, lambda f: f[:price] + ["cheap"] + f[price + 1 :])
    message = diagnose(config, make_dataset_fn(config, "train", 8, training=True).files)
    assert message is not None
    assert path in message and "line 7" in message
    assert "'price'" in message and "cheap" in message
    with pytest.raises(tf.errors.InvalidArgumentError):
        _collect(make_dataset_fn(config, "train", 8, training=False)(None))


def test_diagnose_empty_label(fresh_world):
    config = config_lib.load(fresh_world)
    path = os.path.join(os.path.dirname(fresh_world), "test", "test.csv")
    _replace_line(path, 3, lambda f: f[:-1] + [""])
    message = diagnose(config, make_dataset_fn(config, "eval", 8, training=False).files)
    assert message is not None
    assert path in message and "line 3" in message and "'label'" in message
    with pytest.raises(tf.errors.InvalidArgumentError):
        _collect(make_dataset_fn(config, "eval", 8, training=False)(None))


def test_diagnose_reports_first_bad_row(fresh_world):
    config = config_lib.load(fresh_world)
    first, second = _train_file(fresh_world, 0), _train_file(fresh_world, 1)
    _replace_line(second, 2, lambda f: f[:-1])
    _replace_line(first, 9, lambda f: f[:-1] + [""])
    message = diagnose(config, make_dataset_fn(config, "train", 8, training=True).files)
    assert message.startswith(f"{first}: line 9:")


def test_empty_numeric_feature_uses_default(fresh_world):
    config = config_lib.load(fresh_world, ["features.price.default=100"])
    path = os.path.join(os.path.dirname(fresh_world), "test", "test.csv")
    price = COLUMNS.index("price")
    _replace_line(path, 2, lambda f: f[:price] + [""] + f[price + 1 :])
    assert diagnose(config, [path]) is None
    ids, _ = _collect(make_dataset_fn(config, "eval", 8, training=False)(None))
    assert ids["price"][0] == 5  # 100 >= 80, the last bucket


# --------------------------------------------------------------------------
# End to end through the trainer
# --------------------------------------------------------------------------
def test_trainer_names_file_and_line_of_bad_row(fresh_world, tmp_path):
    from pfd_tf import trainer

    path = _train_file(fresh_world, 1)
    _, rows = _read_csv(path)
    line = len(rows) // 2 + 1
    _replace_line(path, line, lambda f: f[:3] + f[4:])  # drop the `device` field
    config = config_lib.load(fresh_world, ["train.steps=4", "train.log_every=2", "train.warmup_steps=2",
                                            "distill.swap_step=2"])
    # 4 steps x 64 rows cover every one of the ~160 training rows at least once.
    assert count_rows(make_dataset_fn(config, "train", 64, training=True).files, config.data.format) <= 4 * 64
    with pytest.raises(DataError) as info:
        trainer.train(config, str(tmp_path / "model"), verbose=0)
    message = str(info.value)
    assert path in message
    assert f"line {line}" in message
    assert isinstance(info.value.__cause__, tf.errors.InvalidArgumentError)


def test_cached_training_rows_are_each_row_once_per_epoch(tiny_config_path):
    """data.cache: the first epoch's rows are exactly the train rows, reshuffled in later epochs."""
    from pfd_tf.data.pipeline import count_rows

    plain = config_lib.load(tiny_config_path)
    cached = config_lib.load(tiny_config_path, ["data.cache=true"])
    files = make_dataset_fn(plain, "train", 8, training=False).files
    rows = count_rows(files, plain.data.format)

    def keys(ds, n):
        out = []
        for ids, label in ds.unbatch().take(n):
            out.append((int(ids["user_id"]), int(ids["item_id"]), int(ids["price"]), int(ids["device"]),
                        float(label[DEFAULT_TASK])))
        return out

    everything = sorted(keys(make_dataset_fn(plain, "train", 8, training=False)(None), rows))
    stream = keys(make_dataset_fn(cached, "train", 8, training=True)(None), 2 * rows)
    assert sorted(stream[:rows]) == everything
    assert sorted(stream[rows:]) == everything
    assert stream[:rows] != stream[rows:]  # reshuffled each epoch


def test_cache_must_be_a_boolean(tiny_config_path):
    with pytest.raises(config_lib.ConfigError, match="data.cache: expected true or false"):
        config_lib.load(tiny_config_path, ["data.cache=yes please"])
