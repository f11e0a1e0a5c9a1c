"""distill.gate_data: validation through pfd-train: the gate trains on the validation files, and only on files
that are neither training nor held-out files (checked before anything is written).

Which variables the validation rows move (the gate only) is `tests/distill/test_routing.py`'s; the same under
ParameterServerStrategy is `tests/cluster/test_ps_teachers.py`'s.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from conftest import write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATED = ["teachers=[{name: fm, model: fm, features: regular}, {name: cross, model: dcn_v2, cross_layers: 1, "
         "cross_rank: 2, features: regular}]", "distill.ensemble=gating",
         "features.device.dim=3", "features.price.dim=3", "features.user_id.dim=3", "features.item_id.dim=3"]


def _train(config: str, model_dir: str, *overrides: str) -> subprocess.CompletedProcess:
    sets = [arg for item in GATED + list(overrides) for arg in ("--set", item)]
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", config, "--model_dir", model_dir,
                           *sets], capture_output=True, text=True, timeout=600, env=env)


def test_the_gate_trains_on_the_validation_files(tmp_path):
    config = write_tiny_world(str(tmp_path))
    run = _train(config, str(tmp_path / "run"), "data.train_files=[train/part-0.csv]",
                 "data.validation_files=[train/part-1.csv]", "distill.gate_data=validation")
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "run" / "metrics.json") as f:
        metrics = json.load(f)
    assert set(metrics["ensemble_weights"]) == {"fm", "cross"} and metrics["student"]["auc"] > 0
    reader = tf.train.load_checkpoint(metrics["checkpoint"])
    gate = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith("model/ensemble/") and "OPTIMIZER" not in k]
    assert len(gate) == 2 and all(np.any(v != 0) for v in gate)  # w and b left their zeros


def test_validation_files_that_are_trained_on_are_refused_before_anything_is_written(tmp_path):
    config = write_tiny_world(str(tmp_path))
    model_dir = tmp_path / "run"
    run = _train(config, str(model_dir), "data.validation_files=[train/part-1.csv]", "distill.gate_data=validation")
    assert run.returncode == 2, run.stderr[-3000:]
    assert "data.validation_files: " in run.stderr and "part-1.csv is a training file" in run.stderr
    assert not model_dir.exists() or not os.listdir(model_dir)
    run = _train(config, str(model_dir), "data.train_files=[train/part-0.csv]", "distill.gate_data=validation")
    assert run.returncode == 2 and "data.validation_files: distill.gate_data: validation" in run.stderr
