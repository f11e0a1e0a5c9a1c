"""The student SavedModel: reloaded in a fresh process it predicts what the trained student predicts."""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.export import ExportError, check_student_inputs, export_student
from pfd_tf.trainer import build_and_compile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are


def _trained_student_predictions(config, model_dir):
    """Predictions of the training-time model restored from the run's checkpoint."""
    model = build_and_compile(config, tf.distribute.get_strategy())
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    tf.train.Checkpoint(model=model).read(latest).expect_partial()
    logits = [model(ids, training=False).numpy() for ids, _ in make_dataset_fn(config, "eval", 128, training=False)(None)]
    return 1 / (1 + np.exp(-np.concatenate(logits)))


def test_export_reloaded_in_a_fresh_process_matches_the_trained_student(trained_run, tmp_path):
    config, model_dir, _ = trained_run
    export_dir = os.path.join(model_dir, "export", "student")
    (test_csv,) = glob.glob(config.resolve_path(config.data.eval_files[0]))
    out = str(tmp_path / "served.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_USE_LEGACY_KERAS"] = "1"
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "serve_export.py"), export_dir, test_csv, out, "tags=4"],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(out)
    expected = _trained_student_predictions(config, model_dir)
    assert served.shape == expected.shape
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert served.std() > 0  # a constant model would match itself trivially


def test_export_holds_no_privileged_feature_and_no_teacher(trained_run):
    config, model_dir, _ = trained_run
    export_dir = os.path.join(model_dir, "export", "student")
    blobs = b""
    for path in glob.glob(os.path.join(export_dir, "**", "*"), recursive=True):
        if os.path.isfile(path) and not path.endswith(".data-00000-of-00001"):
            blobs += open(path, "rb").read()
    assert b"student" in blobs  # the scan reads the real files
    for name in [f.name for f in config.privileged_features] + ["teacher"]:
        assert name.encode() not in blobs, name
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {f.name for f in config.regular_features}


def test_a_regular_feature_reading_a_privileged_column_is_refused(tiny_config_path):
    """At validation, before any training; export keeps its own guard for configs built in code."""
    import dataclasses

    raw = config_lib.load(tiny_config_path).to_dict()
    raw["features"].append({"name": "dwell_copy", "column": "dwell", "kind": "numeric", "boundaries": [1.0], "dim": 2})
    with pytest.raises(config_lib.ConfigError, match=r"features\[7\]\.column: regular feature 'dwell_copy' reads column 'dwell'"):
        config_lib.from_dict(raw, os.path.dirname(tiny_config_path))
    valid = config_lib.load(tiny_config_path)
    copy = dataclasses.replace(valid.feature("price"), name="dwell_copy", column="dwell")
    unchecked = dataclasses.replace(valid, features=valid.features + (copy,))  # no validation
    with pytest.raises(ExportError, match="dwell_copy.*'dwell'"):
        check_student_inputs(unchecked)
    with pytest.raises(ExportError, match="dwell_copy"):
        export_student(unchecked, "unused", "unused")


def test_metrics_json_and_run_layout(trained_run):
    config, model_dir, metrics = trained_run
    import json

    with open(os.path.join(model_dir, "metrics.json")) as f:
        saved = json.load(f)
    assert saved["mode"] == "pfd" and saved["steps"] == config.train.steps
    assert saved["examples"] == config.train.steps * config.train.batch_size
    assert saved["examples_per_second"] > 0 and saved["train_seconds"] > 0
    for who in ("student", "teacher"):
        assert set(saved[who]) == {"auc", "logloss"}
    resolved = config_lib.load(os.path.join(model_dir, "config.yaml")).to_dict()
    assert all(os.path.isabs(p) for p in resolved["data"]["train_files"] + resolved["data"]["eval_files"])
    assert {k: v for k, v in resolved.items() if k != "data"} == {
        k: v for k, v in config.to_dict().items() if k != "data"}
    assert glob.glob(os.path.join(model_dir, "logs", "train", "events.out.tfevents.*"))


def test_signature_has_one_input_per_raw_column(tmp_path):
    """Two student features read the `price` column (coarse and fine buckets): the export takes `price`
    once, by its column name, and serves in a fresh process what the trained student predicts."""
    from conftest import write_tiny_world
    from pfd_tf.trainer import train

    path = write_tiny_world(str(tmp_path))
    raw = config_lib.load(path).to_dict()
    raw["features"].insert(4, {"name": "price_fine", "column": "price", "kind": "numeric",
                               "boundaries": [2.0, 4.0, 8.0, 16.0, 32.0, 64.0], "dim": 2, "side": "item"})
    raw["train"]["steps"] = 6
    config = config_lib.from_dict(raw, str(tmp_path))
    model_dir = str(tmp_path / "run")
    train(config, model_dir, verbose=0)
    export_dir = os.path.join(model_dir, "export", "student")
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {"user_id", "item_id", "device", "price", "tags"}
    assert inputs["price"].dtype == tf.float32
    (test_csv,) = glob.glob(config.resolve_path(config.data.eval_files[0]))
    out = str(tmp_path / "served.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "serve_export.py"), export_dir, test_csv, out, "tags=4"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.load(out), _trained_student_predictions(config, model_dir), atol=1e-5)
