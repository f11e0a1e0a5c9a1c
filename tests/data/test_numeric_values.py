"""Numeric features fed as values: config, transforms, statistics, the one-row field, and a run end to end.

The end-to-end run trains on a world whose label rises with a count column
(`clicks`) that only a value feature reads; every other regular feature is
noise.  Its student is exported and served in a fresh process, and must
predict what the in-training student predicts, normalization included.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_train_test
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib, run_dir
from pfd_tf.config import ConfigError, FeatureKind, FeatureSpec, NumericEncoding, NumericTransform
from pfd_tf.data import feature_stats
from pfd_tf.features import FeatureEncoder, numeric_transform, vocabulary_size
from pfd_tf.models.build import dummy_ids
from pfd_tf.models.embedding import build_tables
from pfd_tf.models.feature_bank import FeatureBank

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
COLUMNS = ["user_id", "clicks", "views", "dwell", "label"]


def write_count_world(directory: str, rows: int = 1500, seed: int = 0) -> str:
    """Train/test CSVs and a config; returns the config path.

    The label's logit rises with log1p(clicks) (heavy-tailed counts, some
    training fields empty: `default` 0); `user_id` and `views` are noise;
    the privileged `dwell` reveals an event-level intent.
    """
    rng = np.random.default_rng(seed)
    clicks = rng.poisson(np.exp(rng.normal(1.0, 1.2, rows)))
    intent = rng.normal(0, 1, rows)
    logit = 2.0 * (np.log1p(clicks) - np.log1p(clicks).mean()) + 0.8 * intent
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    users = rng.integers(0, 40, rows)
    views = rng.poisson(8, rows)
    dwell = np.round(intent + rng.normal(0, 0.5, rows), 3)
    test = np.arange(rows) >= rows * 0.8
    text = np.array([str(c) for c in clicks], dtype=object)
    text[(rng.random(rows) < 0.05) & ~test] = ""  # empty fields, in training files only

    write_train_test(directory, COLUMNS, list(zip(users, text, views, dwell, label)), test)
    config = {
        "data": {"train_files": ["train/*.csv"], "eval_files": ["test/*.csv"], "label": "label"},
        "features": [
            {"name": "user_id", "kind": "categorical", "hash_buckets": 40, "dim": 4, "side": "user"},
            {"name": "clicks", "kind": "numeric", "encoding": "value", "transform": "log1p", "dim": 4},
            {"name": "views", "kind": "numeric", "transform": "log_square", "boundaries": [1.0, 2.0, 3.0, 4.0],
             "dim": 4, "side": "item"},
            {"name": "dwell", "kind": "numeric", "encoding": "value", "mean": 0.0, "std": 1.5, "dim": 4,
             "role": "privileged"},
        ],
        "model": {"student_tower": [16, 8], "teacher_tower": [16, 8]},
        "distill": {"mode": "pfd", "lambda": 0.5, "swap_step": 4},
        "train": {"batch_size": 64, "steps": 30, "log_every": 15, "eval_batch_size": 128, "learning_rate": 0.1},
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def _raw(tmp_path) -> dict:
    with open(write_count_world(str(tmp_path), rows=200)) as f:
        return yaml.safe_load(f)


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_lib.from_dict(raw)
    return str(info.value)


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------
@pytest.mark.parametrize("index, change, fragment", [
    (1, {"boundaries": [1.0, 2.0]}, "features[1].boundaries: not used with encoding: value"),
    (1, {"mean": 2.0}, "features[1].std: set with mean"),
    (1, {"std": -1.0}, "features[1].std: must be positive"),
    (1, {"encoding": "dense"}, "features[1].encoding: unknown value 'dense' (choose one of: bucket, value)"),
    (1, {"transform": "log2"}, "features[1].transform: unknown value 'log2' (choose one of: none, log1p, log_square)"),
    (2, {"boundaries": []}, "features[2].boundaries: a numeric feature needs boundaries (or encoding: value)"),
    (2, {"mean": 1.0, "std": 2.0}, "features[2].mean: only used with encoding: value"),
    (0, {"transform": "log1p"}, "features[0].transform: only numeric features use transform"),
    (0, {"encoding": "value"}, "features[0].encoding: only numeric features use encoding"),
    (0, {"std": 1.0}, "features[0].std: only numeric features use std"),
])
def test_bad_numeric_keys_are_named(tmp_path, index, change, fragment):
    raw = _raw(tmp_path)
    raw["features"][index].update(change)
    assert fragment in _error(raw)


def test_defaults_are_left_out_of_to_dict_and_values_round_trip(tmp_path):
    config = config_lib.from_dict(_raw(tmp_path))
    features = config.to_dict()["features"]
    assert {"transform", "encoding", "mean", "std"}.isdisjoint(features[0])  # a categorical feature
    assert {"encoding", "mean", "std"}.isdisjoint(features[2]) and features[2]["transform"] == "log_square"
    assert features[1] == {"name": "clicks", "kind": "numeric", "dim": 4, "role": "regular", "side": "context",
                           "transform": "log1p", "encoding": "value"}
    assert features[3]["std"] == 1.5 and "mean" not in features[3]
    assert config_lib.from_dict(config.to_dict()) == config
    clicks = config.feature("clicks")
    assert clicks.as_value and clicks.needs_stats and clicks.encoding is NumericEncoding.VALUE
    assert not config.feature("dwell").needs_stats  # its std is set
    assert [s.name for s in config_lib.features_needing_stats(config)] == ["clicks"]
    assert vocabulary_size(clicks) == 1 and vocabulary_size(config.feature("views")) == 5


def test_with_feature_stats_fills_unset_ones_and_makes_a_zero_std_one(tmp_path):
    config = config_lib.from_dict(_raw(tmp_path))
    resolved = config_lib.with_feature_stats(config, {"clicks": {"mean": 1.25, "std": 0.0}})
    assert (resolved.feature("clicks").mean, resolved.feature("clicks").std) == (1.25, 1.0)  # constant column
    assert resolved.feature("dwell") == config.feature("dwell")  # set by the user: kept
    assert not config_lib.features_needing_stats(resolved)
    with pytest.raises(ConfigError, match=r"features\[1\]\.std: no mean and std for 'clicks'"):
        config_lib.with_feature_stats(config, {"dwell": {"mean": 0.0, "std": 1.0}})
    with pytest.raises(ValueError, match="'clicks' .*no mean and std yet"):
        FeatureEncoder(config.features)  # an unresolved config never reaches a model silently


# --------------------------------------------------------------------------
# Transforms and the encoder
# --------------------------------------------------------------------------
def test_transforms_against_hand_computed_values():
    x = tf.constant([-1.0, 0.0, 1.0, 2.0, 3.0, 100.0])
    # log_square: x > 2 -> floor(ln(x)^2): ln 3 = 1.0986 -> 1.207 -> 1; ln 100 = 4.605 -> 21.21 -> 21
    np.testing.assert_array_equal(numeric_transform(x, NumericTransform.LOG_SQUARE).numpy(), [-1, 0, 1, 2, 1, 21])
    np.testing.assert_allclose(numeric_transform(x, NumericTransform.LOG1P).numpy(),
                               [0.0, 0.0, math.log(2), math.log(3), math.log(4), math.log(101)], rtol=1e-6)
    np.testing.assert_array_equal(numeric_transform(x, NumericTransform.NONE).numpy(), x.numpy())


def test_the_encoder_normalizes_values_and_transforms_before_the_boundaries():
    value = FeatureSpec("clicks", FeatureKind.NUMERIC, 2, transform=NumericTransform.LOG1P,
                        encoding=NumericEncoding.VALUE, mean=1.0, std=0.5)
    bucket = FeatureSpec("views", FeatureKind.NUMERIC, 2, column="clicks", transform=NumericTransform.LOG_SQUARE,
                         boundaries=(1.5, 10.0))
    out = FeatureEncoder([value, bucket])({"clicks": tf.constant([0.0, math.e - 1, 100.0])})
    assert out["clicks"].dtype == tf.float32 and out["views"].dtype == tf.int64
    np.testing.assert_allclose(out["clicks"].numpy(), [(0 - 1) / 0.5, (1 - 1) / 0.5, (math.log(101) - 1) / 0.5],
                               rtol=1e-6)
    # log_square: 0 -> 0 (bucket 0), 1.718 -> 1.718 (bucket 1), 100 -> 21 (bucket 2)
    np.testing.assert_array_equal(out["views"].numpy(), [0, 1, 2])


def test_a_value_field_is_its_one_row_times_the_value_and_stacks_with_ids():
    value = FeatureSpec("clicks", FeatureKind.NUMERIC, 2, encoding=NumericEncoding.VALUE, mean=0.0, std=1.0)
    user = FeatureSpec("user_id", FeatureKind.CATEGORICAL, 2, hash_buckets=3)
    tables = build_tables([value, user])
    zeros = dummy_ids([value, user])
    assert zeros["clicks"].dtype == tf.float32 and zeros["user_id"].dtype == tf.int64
    for table, weights in ((tables["clicks"], [[2.0, -1.0]]), (tables["user_id"], [[0, 0], [1, 1], [2, 2]])):
        table(tf.constant([0], tf.int64))
        table.set_weights([np.array(weights, np.float32)])
    bank = FeatureBank({"clicks": tf.constant([0.5, -3.0]), "user_id": tf.constant([1, 2], tf.int64)})
    np.testing.assert_allclose(bank.field(value, tables["clicks"]).numpy(), [[1.0, -0.5], [-6.0, 3.0]])
    stack = bank.stack([value, user], tables)
    assert stack.shape == (2, 2, 2)
    np.testing.assert_allclose(stack.numpy()[:, 1], [[1, 1], [2, 2]])
    assert len(bank.trainable_rows()) == 2  # the one row is read (and penalized) like any other


# --------------------------------------------------------------------------
# The statistics pass
# --------------------------------------------------------------------------
def _numpy_stats(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std())


def test_stats_from_csv_and_tfrecord_equal_numpy(tmp_path):
    raw = _raw(tmp_path)
    raw["features"][1]["default"] = 3.0
    config = config_lib.from_dict(raw, str(tmp_path))
    with open(tmp_path / "train" / "part-0.csv") as f:
        fields = [line.split(",")[1] for line in f.read().splitlines()[1:]]
    assert "" in fields  # empty fields read as `default` (3)
    counts = np.array([float(v) if v else 3.0 for v in fields])
    stats = feature_stats.compute(config)
    assert set(stats) == {"clicks"}
    assert stats["clicks"]["rows"] == len(fields) and stats["clicks"]["transform"] == "log1p"
    np.testing.assert_allclose([stats["clicks"]["mean"], stats["clicks"]["std"]], _numpy_stats(np.log1p(counts)))

    # TFRecord: a record without the column reads as `default`, too
    path = str(tmp_path / "train.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i, v in enumerate(fields):
            feature = {"label": tf.train.Feature(float_list=tf.train.FloatList(value=[i % 2])),
                       "user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"u"])),
                       "views": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0])),
                       "dwell": tf.train.Feature(float_list=tf.train.FloatList(value=[0.0]))}
            if v:
                feature["clicks"] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    raw["data"].update(format="tfrecord", train_files=[path])
    raw["features"][1]["transform"] = "log_square"
    stats = feature_stats.compute(config_lib.from_dict(raw, str(tmp_path)))
    squared = np.where(counts > 2, np.floor(np.log(np.maximum(counts, 2)) ** 2), counts)
    np.testing.assert_allclose([stats["clicks"]["mean"], stats["clicks"]["std"]], _numpy_stats(squared))


def test_no_pass_without_a_feature_that_needs_one(tmp_path, monkeypatch):
    raw = _raw(tmp_path)
    raw["features"][1].update(mean=1.0, std=2.0)
    config = config_lib.from_dict(raw, str(tmp_path))
    monkeypatch.setattr(feature_stats, "file_order", lambda *a: pytest.fail("read the training files"))
    assert feature_stats.compute(config) == {}
    assert feature_stats.for_run(config, str(tmp_path), resume=False) == {}
    assert feature_stats.resolve(config, str(tmp_path)) is config


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e39"])
def test_a_value_that_is_not_finite_counts_as_the_default(tmp_path, value):
    """As the encoder reads it (`features.filled_numeric`): the statistics never see a NaN or an inf."""
    raw = _raw(tmp_path)
    raw["features"][1]["default"] = 3.0
    path = tmp_path / "train" / "part-0.csv"
    original = path.read_text()
    path.write_text(original + f"3,{value},1,0.0,1\n")
    odd = feature_stats.compute(config_lib.from_dict(raw, str(tmp_path)))["clicks"]
    path.write_text(original + "3,3.0,1,0.0,1\n")
    default = feature_stats.compute(config_lib.from_dict(raw, str(tmp_path)))["clicks"]
    assert odd == default and np.isfinite(odd["mean"]) and odd["std"] > 0


# --------------------------------------------------------------------------
# End to end: train, resume, export, serve in a fresh process
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished pfd run on the count world: (config as written, resolved config, model_dir, metrics)."""
    from pfd_tf.trainer import train

    directory = str(tmp_path_factory.mktemp("counts"))
    config = config_lib.load(write_count_world(directory))
    model_dir = os.path.join(directory, "run")
    metrics = train(config, model_dir, verbose=0)
    return config, feature_stats.resolve(config, model_dir), model_dir, metrics


def test_stats_are_written_beside_the_config_as_written(run):
    config, resolved, model_dir, _ = run
    with open(os.path.join(model_dir, run_dir.FEATURE_STATS)) as f:
        saved = json.load(f)["features"]
    counts = []
    with open(config.resolve_path("train/part-0.csv")) as f:
        counts = [float(line.split(",")[1] or 0) for line in f.read().splitlines()[1:]]
    np.testing.assert_allclose([saved["clicks"]["mean"], saved["clicks"]["std"]], _numpy_stats(np.log1p(counts)))
    assert set(saved) == {"clicks"}  # dwell sets its own
    assert (resolved.feature("clicks").mean, resolved.feature("clicks").std) == (saved["clicks"]["mean"],
                                                                                 saved["clicks"]["std"])
    written = config_lib.load(os.path.join(model_dir, "config.yaml"))
    assert written.feature("clicks") == config.feature("clicks")  # the identity: as the user wrote it
    assert run_dir.FEATURE_STATS in run_dir.RUN_FILES  # --overwrite removes it
    os.rename(os.path.join(model_dir, run_dir.FEATURE_STATS), os.path.join(model_dir, "moved"))
    try:
        with pytest.raises(ConfigError, match="feature_stats.json: missing; feature 'clicks'"):
            feature_stats.resolve(written, model_dir)  # what pfd-export and the sidecar call
    finally:
        os.rename(os.path.join(model_dir, "moved"), os.path.join(model_dir, run_dir.FEATURE_STATS))


def test_a_resume_reads_the_stats_back(run, tmp_path, monkeypatch):
    """More steps on a copy of the run: the statistics are read back, not computed again."""
    import dataclasses
    import shutil

    from pfd_tf.trainer import train

    config, resolved, model_dir, _ = run
    copy_dir = str(tmp_path / "run")
    shutil.copytree(model_dir, copy_dir)
    monkeypatch.setattr(feature_stats, "compute", lambda config: pytest.fail("recomputed on a resume"))
    assert config_lib.with_feature_stats(config, feature_stats.for_run(config, copy_dir, resume=True)) == resolved
    before = open(os.path.join(copy_dir, run_dir.FEATURE_STATS)).read()
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=config.train.steps + 6))
    assert train(longer, copy_dir, verbose=0)["steps"] == config.train.steps + 6
    assert open(os.path.join(copy_dir, run_dir.FEATURE_STATS)).read() == before


def _in_training_predictions(config, model_dir):
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.trainer import build_and_compile

    model = build_and_compile(config, tf.distribute.get_strategy())
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    tf.train.Checkpoint(model=model).read(latest).expect_partial()
    logits = [model(ids, training=False).numpy() for ids, _ in make_dataset_fn(config, "eval", 128, training=False)(None)]
    return model, 1 / (1 + np.exp(-np.concatenate(logits)))


def test_the_served_student_predicts_what_it_trained_to_and_uses_the_count(run, tmp_path):
    config, resolved, model_dir, metrics = run
    export_dir = os.path.join(model_dir, "export", "student")
    test_csv = config.resolve_path("test/test.csv")
    out = str(tmp_path / "served.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_USE_LEGACY_KERAS"] = "1"
    serving = subprocess.Popen([sys.executable, os.path.join(HERE, "serve_export.py"), export_dir, test_csv, out],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    model, expected = _in_training_predictions(resolved, model_dir)  # while the fresh process starts

    # The count is used: the student ranks held-out rows well although its other inputs are noise;
    # given one count for every row, it ranks them by chance; and its prediction rises with the raw
    # count (the gradient through the served transform and normalization).
    from pfd_tf.metrics import exact_auc

    assert metrics["student"]["auc"] > 0.75, metrics
    loaded = tf.saved_model.load(export_dir)
    signature = loaded.signatures["serving_default"]
    assert signature.structured_input_signature[1]["clicks"].dtype == tf.float32
    table = np.genfromtxt(test_csv, delimiter=",", names=True, dtype=None, encoding="utf-8")
    rows = {"user_id": tf.constant(table["user_id"].astype(str)), "views": tf.constant(table["views"], tf.float32)}
    counts = tf.constant(table["clicks"], tf.float32)
    auc = exact_auc(table["label"], signature(clicks=counts, **rows)["logit"].numpy().ravel())
    ablated = exact_auc(table["label"], signature(clicks=tf.fill(counts.shape, 3.0), **rows)["logit"].numpy().ravel())
    assert auc == pytest.approx(metrics["student"]["auc"], abs=1e-6) and abs(ablated - 0.5) < 0.1, (auc, ablated)
    clicks = tf.constant([0.0, 2.0, 8.0])
    with tf.GradientTape() as tape:
        tape.watch(clicks)
        probability = signature(clicks=clicks, **{name: value[:3] for name, value in rows.items()})["probability"]
    gradient = tape.gradient(probability, clicks).numpy()
    assert (gradient > 0).all(), gradient

    _, stderr = serving.communicate(timeout=300)
    assert serving.returncode == 0, stderr[-3000:]
    served = np.load(out)
    assert served.shape == expected.shape
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert served.std() > 0
