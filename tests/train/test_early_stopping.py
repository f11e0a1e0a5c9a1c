"""Early stopping on validation files (Section 3.4.2 of Zhu et al. 2020), through real runs of `train`.

A student stops by its distillation loss on the validation day, which it
also trains on (`train.merge_validation`); a teacher trained alone stops by
validation AUC.  The best checkpoint is what gets evaluated and exported,
and a restarted run is finished, not trained further.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError
from pfd_tf.early_stopping import best_checkpoint, validation_config, with_validation_merged
from pfd_tf.evaluation import Evaluator
from conftest import write_tiny_world

STOPPING = ["data.train_files=[train/part-0.csv]", "data.validation_files=[train/part-1.csv]",
            "train.steps=120", "train.log_every=6", "train.learning_rate=2.0", "train.early_stopping_patience=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_tiny_world(str(tmp_path_factory.mktemp("world")), rows=2000)


def test_a_student_stops_by_its_distillation_loss_and_serves_its_best_checkpoint(world, tmp_path):
    from pfd_tf.trainer import train

    config = config_lib.load(world, STOPPING + ["train.early_stopping=distillation", "train.merge_validation=true"])
    model_dir = str(tmp_path / "run")
    metrics = train(config, model_dir, verbose=0)
    record = metrics["early_stopping"]
    values = [entry["value"] for entry in record["history"]]
    assert record["metric"] == "validation loss_distill" and record["stopped"]
    assert len(values) < 120 // 6 and metrics["steps"] < 120  # stopped before the end
    best = int(np.argmin(values))
    assert record["best_step"] == record["history"][best]["step"] and record["best"] == min(values)
    assert all(v >= min(values) for v in values[best + 1:]) and len(values) - 1 - best == 1  # patience 1

    # What was evaluated and exported is the best checkpoint, re-scored here on its own.
    kept = best_checkpoint(model_dir)
    assert int(kept.rsplit("-", 1)[1]) == record["best_step"]
    assert metrics["eval"]["step"] == record["best_step"]
    rescored = Evaluator(validation_config(config))(kept)
    assert rescored["loss_distill"] == pytest.approx(record["best"], rel=1e-6)
    held_out = Evaluator(config)(kept)
    assert metrics["student"]["auc"] == pytest.approx(held_out["student_auc"], rel=1e-9)
    assert os.path.isdir(os.path.join(model_dir, "export", "student"))

    # Merged: the validation rows were trained on (2 files' rows), and the run is finished on a restart.
    assert metrics["train_rows"] == sum(1 for _ in open(os.path.join(os.path.dirname(world), "train", "part-0.csv"))) \
        + sum(1 for _ in open(os.path.join(os.path.dirname(world), "train", "part-1.csv"))) - 2
    again = train(config, model_dir, verbose=0)
    assert again == metrics


def test_a_teacher_trained_alone_stops_by_validation_auc(world, tmp_path):
    from pfd_tf.trainer import train

    config = config_lib.load(world, STOPPING + ["train.early_stopping=auc", "distill.teacher_only=true",
                                                "model.sharing=independent", "train.early_stopping_patience=2"])
    metrics = train(config, str(tmp_path / "teacher"), verbose=0)
    record = metrics["early_stopping"]
    assert record["metric"] == "validation mean AUC of teacher (negated)"
    values = [entry["value"] for entry in record["history"]]
    assert record["best"] == min(values) and -record["best"] > 0.5
    assert metrics["train_rows"] < 2000  # not merged: the validation day is not trained on
    with open(os.path.join(str(tmp_path / "teacher"), "early_stopping.json")) as f:
        assert json.load(f)["best_step"] == record["best_step"]


@pytest.mark.parametrize("overrides, error", [
    (["train.early_stopping=auc", "data.validation_files=[]"], r"data\.validation_files: train\.early_stopping: auc"),
    (["train.early_stopping=distillation", "distill.mode=baseline"], r"train\.early_stopping: distillation stops"),
    (["train.early_stopping=auc", "train.merge_validation=true"], r"train\.merge_validation: with early_stopping: auc"),
    (["train.merge_validation=true", "train.early_stopping=none"], r"train\.merge_validation: only with"),
    (["train.early_stopping_patience=0"], r"train\.early_stopping_patience"),
])
def test_bad_early_stopping_is_refused_by_key(world, overrides, error):
    base = ["data.validation_files=[train/part-1.csv]"]
    with pytest.raises(ConfigError, match=error):
        config_lib.load(world, base + overrides)


def test_validation_files_may_not_be_held_out_or_trained_on_unmerged(world):
    held_out = config_lib.load(world, ["data.validation_files=[test/test.csv]", "train.early_stopping=auc"])
    with pytest.raises(ConfigError, match=r"data\.validation_files: .*test\.csv is a held-out file"):
        with_validation_merged(held_out)
    trained = config_lib.load(world, ["data.validation_files=[train/part-1.csv]", "train.early_stopping=auc"])
    with pytest.raises(ConfigError, match=r"data\.validation_files: .*part-1\.csv is a training file too"):
        with_validation_merged(trained)
