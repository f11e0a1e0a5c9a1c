"""A zoo student, distilled from two co-trained zoo teachers through the gate, exported and served in a fresh process.

The exported SavedModel holds the student alone (its first-order tables
included) and predicts what the trained student predicts.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.export import restore_student
from conftest import write_tiny_world

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
EQUAL_DIMS = [f"features.{name}.dim=4" for name in ("device", "price", "tags", "dwell", "cart")]


# Two students with different interaction layers (first-order + CIN, attention without first order); the
# others build the same way (tests/models/test_zoo_networks.py), and a DeepFM student trains in tests/cluster/test_ps_teachers.py.
@pytest.mark.parametrize("student", ["xdeepfm", "autoint"])
def test_a_zoo_student_is_served_as_trained(student, tmp_path):
    from pfd_tf.trainer import train

    path = write_tiny_world(str(tmp_path))
    config = config_lib.load(path, EQUAL_DIMS + [
        "teachers=[{name: wide, model: wide_deep}, {name: cross, model: dcn, cross_layers: 1}]",
        f"student={{model: {student}, cin_layers: [4, 2], attention_layers: 1, attention_dim: 4}}",
        "distill.ensemble=gating"])
    model_dir = str(tmp_path / "run")
    metrics = train(config, model_dir, verbose=0)
    assert set(metrics["teachers"]) == {"wide", "cross"} and metrics["ensemble"] is not None

    export_dir = os.path.join(model_dir, "export", "student")
    (test_csv,) = glob.glob(config.resolve_path(config.data.eval_files[0]))
    out = str(tmp_path / "served.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_USE_LEGACY_KERAS"] = "1"
    proc = subprocess.run([sys.executable, os.path.join(HERE, "serve_export.py"), export_dir, test_csv, out, "tags=4"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(out)

    trained = restore_student(config, tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    logits = [trained(ids, training=False).numpy()
              for ids, _ in make_dataset_fn(config, "eval", 128, training=False)(None)]
    np.testing.assert_allclose(served, 1 / (1 + np.exp(-np.concatenate(logits))), atol=1e-5)
    assert served.std() > 0
    names = [v.name for v in tf.saved_model.load(export_dir).student.variables]
    assert any("linear" in n for n in names) == (student != "autoint")  # first-order tables where the model has them
    blobs = b"".join(open(p, "rb").read() for p in glob.glob(os.path.join(export_dir, "**", "*"), recursive=True)
                     if os.path.isfile(p) and not p.endswith(".data-00000-of-00001"))
    for absent in (b"teacher", b"gate", b"wide", b"cross"):
        assert absent not in blobs, absent
