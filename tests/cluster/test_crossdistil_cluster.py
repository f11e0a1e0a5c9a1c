"""CrossDistil under ParameterServerStrategy on a loopback cluster, and its export read in a fresh process.

The bi-level step (Theta by the run's optimizer, P and Q by their own SGD,
Algorithm 1 of "Cross-Task Knowledge Distillation in Multi-Task
Recommendation") runs inside stock `fit` on two workers and two parameter
servers.  What must hold: P and Q moved (they start at 1 and 0), the
augmented heads are in the checkpoint, and the exported student holds each
task's outputs but no augmented head and no P, Q (read by a process that
never imports pfd_tf).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from conftest import as_two_tasks, write_tiny_world
from loopback_ps import read_results

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
READ_EXPORT = """
import sys, json
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
outputs = sorted(loaded.signatures["serving_default"].structured_outputs)
variables = [shape for name, shape in tf.train.list_variables(sys.argv[1] + "/variables/variables")
             if name.endswith("VARIABLE_VALUE")]
print(json.dumps({"variables": variables, "outputs": outputs,
                  "pfd_tf": "pfd_tf" in sys.modules}))
"""


def test_crossdistil_trains_bi_level_in_a_cluster_and_its_teachers_stay_out_of_the_export(tmp_path):
    path = write_tiny_world(str(tmp_path))
    with open(path) as f:
        raw = yaml.safe_load(f)
    as_two_tasks(raw)
    raw["distill"] = {"mode": "baseline", "crossdistil": {"alpha": 0.5, "margin": 0.5,
                                                          "calibration_learning_rate": 0.1}}
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "loopback_ps.py"), path, str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = read_results(proc.stdout)["metrics"]
    reader = tf.train.load_checkpoint(metrics["checkpoint"])
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith("model/crossdistil/")
            and "OPTIMIZER" not in k]
    platt = {k: float(reader.get_tensor(k)) for k in keys if "/platt/" in k}
    assert len(platt) == 4, keys
    assert all(value != (1.0 if "/p/" in key else 0.0) for key, value in platt.items()), platt
    assert sum("/augmented/" in k for k in keys) == 4, keys  # kernel and bias of buy+ and cart+

    export = str(tmp_path / "run" / "export" / "student")
    proc = subprocess.run([sys.executable, "-c", READ_EXPORT, export], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not seen["pfd_tf"]
    assert seen["outputs"] == ["logit", "logit_cart", "probability", "probability_cart"]
    # The SavedModel names its variables by position: count shapes.  One logit kernel `[width, 1]` per task
    # (the body's and head_cart's; buy+ and cart+ would add two more) and no scalar (P and Q are scalars).
    shapes = seen["variables"]
    assert len([s for s in shapes if len(s) == 2 and s[1] == 1]) == 2, shapes
    assert not [s for s in shapes if s == []], shapes
