"""The ready CrossDistil config of the two-task world trains through the real CLI and reports each task."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from pfd_tf import config as config_lib
from pfd_tf.datasets.crossdistil_config import write_crossdistil_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_written_crossdistil_config_trains_through_pfd_train(tmp_path):
    path = write_crossdistil_world(str(tmp_path / "world"), rows=3000, seed=0, days=3)
    config = config_lib.load(path)
    assert [task.name for task in config.task_specs] == ["like", "buy"]
    assert config.distill.crossdistil is not None and config.distill.crossdistil.tasks == ("like", "buy")
    model_dir = str(tmp_path / "run")
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", path, "--model_dir", model_dir,
                           "--set", "train.batch_size=256", "--set", "model.student_tower=[16]"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    for task in ("like", "buy"):
        auc = metrics["tasks"][task]["student"]["auc"]
        assert math.isfinite(auc) and 0.0 <= auc <= 1.0
    assert os.path.exists(os.path.join(model_dir, "export", "student", "saved_model.pb"))
