"""Zoo teachers, the gate and a hint under ParameterServerStrategy: the same train_step on a loopback cluster.

Two co-trained zoo teachers (FM over every feature, a cross network over the
regular ones) distil into a DeepFM student through the teacher gating
network, with a hint; the gate learns on validation rows (`distill.gate_data:
validation`: every element `fit` reads pairs a training batch with a
validation batch, which each worker reads itself).  What must hold in the
cluster: the variables that start at zero moved (the gate's w and b, trained
by its own loss only; the first-order tables, by the student's and FM's
losses), the tables are sharded over the two parameter servers, and the
metrics name every teacher.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from conftest import write_tiny_world
from loopback_ps import read_results

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
OVERRIDES = [f"features.{name}.dim=4" for name in ("device", "price", "tags", "dwell", "cart")] + [
    "teachers=[{name: fm, model: fm}, {name: cross, model: dcn_v2, cross_layers: 1, cross_rank: 2, "
    "features: regular}]",
    "student={model: deepfm}", "distill.ensemble=gating", "distill.hint_weight=0.1", "distill.hint_teacher=cross",
    "features.user_id.hash_buckets=101",
    "data.train_files=[train/part-0.csv]", "data.validation_files=[train/part-1.csv]", "distill.gate_data=validation"]


def test_zoo_teachers_gate_and_hint_train_in_a_cluster(tmp_path):
    config = write_tiny_world(str(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "loopback_ps.py"), config, str(tmp_path / "run"),
                           *OVERRIDES], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = read_results(proc.stdout)
    metrics = results["metrics"]
    assert metrics["steps"] == 12 and set(metrics["teachers"]) == {"fm", "cross"}
    assert set(metrics["ensemble_weights"]) == {"fm", "cross"}
    assert results["sharding"]["user_id"]["sharded"] and len(results["sharding"]["user_id"]["table"]) == 2

    reader = tf.train.load_checkpoint(metrics["checkpoint"])
    values = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
              if key.startswith("model/") and "OPTIMIZER" not in key}

    def moved(fragment):
        found = [v for k, v in values.items() if fragment in k]
        assert found, fragment
        return any(np.any(v != 0) for v in found)

    assert moved("model/ensemble/w/") and moved("model/ensemble/b/")  # the gate (zeros at the start)
    assert moved("_linear_tables")  # first-order weights (zeros at the start), the student's and FM's
    assert any("model/hint/projection/" in k for k in values)  # the hint's W is in the checkpoint
    assert os.path.exists(tmp_path / "run" / "export" / "student" / "saved_model.pb")
