"""The TFDS builder serves the very rows the CSV generator writes."""
import csv
import glob
import os

import pytest

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
import tensorflow_datasets as tfds  # noqa: E402

from pfd_tf.datasets import cvr, cvr_world, tfds_builders# noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tfds.disable_progress_bar()
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    splits, info = tfds.load("pfd_synthetic_cvr/tiny", data_dir=data_dir, with_info=True)
    return {k: list(tfds.as_numpy(ds)) for k, ds in splits.items()}, info


def as_csv_row(example):
    """The example formatted as its CSV line's fields."""
    by_name = {c.name: c for c in cvr_world.CVR_FEATURES}
    fields = []
    for name in cvr_world.CVR_COLUMNS:
        value, col = example[name], by_name.get(name)
        if isinstance(value, bytes):
            fields.append(value.decode())
        elif col is not None and col.dtype == "float":
            fields.append(f"{value:.{col.decimals}f}")
        else:
            fields.append(str(int(value)))
    return tuple(fields)


def read_rows(pattern):
    rows = []
    for path in sorted(glob.glob(pattern)):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            assert tuple(next(reader)) == cvr_world.CVR_COLUMNS
            rows.extend(tuple(r) for r in reader)
    return rows


def test_builder_metadata():
    builder_cls = tfds.builder_cls("pfd_synthetic_cvr")
    assert builder_cls is tfds_builders.PfdSyntheticCvr
    configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
    assert configs["small"].rows == 20_000 and configs["default"].rows == 200_000
    assert str(builder_cls.VERSION) == "1.0.0" and "1.0.0" in builder_cls.RELEASE_NOTES


def test_splits_and_features(built):
    splits, info = built
    assert set(splits) == {"train", "test"}
    assert len(splits["train"]) + len(splits["test"]) == 2_000
    assert info.splits["train"].num_examples == len(splits["train"])
    assert set(info.features.keys()) == set(cvr_world.CVR_COLUMNS)
    assert info.features["purchase"].num_classes == 2
    assert {int(e["day"]) for e in splits["test"]} == {7}
    assert max(int(e["day"]) for e in splits["train"]) == 6


def test_same_rows_as_csv_generator(built, tmp_path):
    splits, _ = built
    cvr.generate_cvr(str(tmp_path), rows=2_000, seed=0, days=8)
    for split, folder in (("train", "train"), ("test", "test")):
        csv_rows = read_rows(os.path.join(str(tmp_path), folder, "*.csv"))
        tfds_rows = [as_csv_row(e) for e in splits[split]]
        assert sorted(tfds_rows) == sorted(csv_rows)
