"""Criteo- and Avazu-format files through the paper's training schemes (Section 3.4 of Zhu et al. 2020).

Criteo: a DeepFM teacher trained alone, early-stopped on validation AUC; a
DNN student distilled from it restored frozen (pre-train), early-stopped on
its distillation loss with the validation day merged into training.
Avazu: an xDeepFM teacher co-trained with the student, early-stopped on the
distillation loss.  Each student is exported from its best checkpoint and
served in a fresh process as the best checkpoint predicts.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.data import feature_stats
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.early_stopping import best_checkpoint
from pfd_tf.export import restore_student

from criteo_avazu_files import AVAZU_COLUMNS, CRITEO_COLUMNS, write_avazu, write_criteo

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
CONFIGS = os.path.join(os.path.dirname(HERE), "configs")
TINY = ["model.student_tower=[8]", "model.teacher_tower=[8]", "train.epochs=0", "train.steps=8",
        "train.batch_size=32", "train.log_every=2", "train.eval_batch_size=128", "train.learning_rate=0.05",
        "train.early_stopping_patience=2"]


def _load(name, directory, ext, train, validation, more):
    return config_lib.load(os.path.join(CONFIGS, f"{name}.yaml"), [
        f"data.train_files=[{directory}/{train}]", f"data.validation_files=[{directory}/{validation}]",
        f"data.eval_files=[{directory}/eval/*.{ext}]", *TINY, *more])


def _served_matches_best(config, model_dir, rows, columns, tmp_path, tag):
    path = str(tmp_path / f"{tag}.csv")
    inputs = [c for c in columns if c != config.data.label]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(inputs)
        for row in rows:
            values = dict(zip(columns, row))
            writer.writerow([(values[c] or "nan") if c.startswith("I") and tag == "criteo" else values[c]
                             for c in inputs])
    out = str(tmp_path / f"{tag}.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "serve_export.py"),
                           os.path.join(model_dir, "export", "student"), path, out],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = feature_stats.resolve(config_lib.load(os.path.join(model_dir, "config.yaml")), model_dir)
    student = restore_student(resolved, best_checkpoint(model_dir))
    logits = np.concatenate([student(ids, training=False).numpy()
                             for ids, _ in make_dataset_fn(resolved, "eval", 128, training=False)(None)])
    np.testing.assert_allclose(np.load(out), 1 / (1 + np.exp(-logits)), atol=1e-5)


def test_criteo_pre_trained_teacher_and_an_early_stopped_student(tmp_path):
    from pfd_tf.trainer import train

    directory = str(tmp_path / "criteo")
    files = write_criteo(directory)
    teacher = "{name: deepfm, model: deepfm, features: regular}"
    first = _load("criteo", directory, "txt", "train/day-0.txt", "train/day-1.txt",
                  [f"teachers=[{teacher}]", "distill.teacher_only=true", "train.early_stopping=auc"])
    stage_one = train(first, str(tmp_path / "teacher"), verbose=0)
    assert stage_one["early_stopping"]["metric"].startswith("validation mean AUC of deepfm")

    frozen = f"{{name: deepfm, model: deepfm, features: regular, checkpoint: {tmp_path / 'teacher'}}}"
    second = _load("criteo", directory, "txt", "train/day-0.txt", "train/day-1.txt",
                   [f"teachers=[{frozen}]", "train.early_stopping=distillation", "train.merge_validation=true"])
    metrics = train(second, str(tmp_path / "student"), verbose=0)
    assert metrics["early_stopping"]["metric"] == "validation loss_distill"
    assert metrics["train_rows"] == len(files["train/day-0.txt"]) + len(files["train/day-1.txt"])  # merged
    assert metrics["teachers"]["deepfm"] == stage_one["teachers"]["deepfm"]  # frozen: the very teacher
    rows = [line.split("\t") for line in files["eval/day-2.txt"]]
    _served_matches_best(second, str(tmp_path / "student"), rows, CRITEO_COLUMNS, tmp_path, "criteo")


def test_avazu_co_trained_teacher_and_an_early_stopped_student(tmp_path):
    from pfd_tf.trainer import train

    directory = str(tmp_path / "avazu")
    files = write_avazu(directory)
    config = _load("avazu", directory, "csv", "train/part-0.csv", "train/part-1.csv", [
        "teachers=[{name: xdeepfm, model: xdeepfm, features: regular, cin_layers: [2]}]",
        "train.early_stopping=distillation"])
    metrics = train(config, str(tmp_path / "run"), verbose=0)
    assert set(metrics["teachers"]) == {"xdeepfm"} and metrics["early_stopping"]["best_step"] > 0
    rows = [line.split(",") for line in files["eval/part-2.csv"]]
    _served_matches_best(config, str(tmp_path / "run"), rows, AVAZU_COLUMNS, tmp_path, "avazu")
