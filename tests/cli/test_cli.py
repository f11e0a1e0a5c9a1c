"""pfd-train and pfd-export as a user runs them, plus Ind&Async with a frozen pre-trained teacher."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from conftest import write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(module, *args):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600, env=env)


def test_pfd_train_with_overrides_then_pfd_export(tmp_path):
    config = write_tiny_world(str(tmp_path))
    model_dir = str(tmp_path / "run")
    proc = _run("pfd_tf.cli.train", "--config", config, "--model_dir", model_dir,
                "--set", "distill.mode=lupi", "--set", "train.steps=9", "--set", "train.log_every=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # progress is visible while it trains, by step and by pass over the 960 training rows: 4 + 4 + 1 steps
    assert [line.split("  ")[:2] for line in proc.stdout.splitlines() if line.startswith("step ")] == [
        ["step 4/9", "epoch 0.27/0.60"], ["step 8/9", "epoch 0.53/0.60"], ["step 9/9", "epoch 0.60/0.60"]]
    assert f"metrics: {model_dir}/metrics.json" in proc.stdout
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["mode"] == "lupi" and metrics["steps"] == 9

    out = str(tmp_path / "exported")
    proc = _run("pfd_tf.cli.export", "--model_dir", model_dir, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.exists(os.path.join(out, "student", "saved_model.pb"))


def test_pfd_train_reports_a_bad_key_by_name(tmp_path):
    config = write_tiny_world(str(tmp_path))
    proc = _run("pfd_tf.cli.train", "--config", config, "--model_dir", str(tmp_path / "run"),
                "--set", "distill.lamda=0.3")
    assert proc.returncode == 2
    assert "distill.lamda: unknown key" in proc.stderr
    assert not os.path.exists(tmp_path / "run" / "metrics.json")


def test_ind_async_loads_and_freezes_a_pretrained_teacher(tmp_path):
    import pfd_tf  # noqa: F401
    from pfd_tf._keras import tf
    from pfd_tf import config as config_lib
    from pfd_tf.trainer import train

    path = write_tiny_world(str(tmp_path))
    first = config_lib.load(path, ["model.sharing=independent", "distill.teacher_only=true"])
    pretrained = train(first, str(tmp_path / "teacher_run"), verbose=0)
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "teacher_run" / "checkpoints"))
    assert pretrained["student"] is None and pretrained["teacher"]["auc"] > 0
    assert pretrained["checkpoint"] == checkpoint
    assert not os.path.exists(tmp_path / "teacher_run" / "export")  # an untrained student is not served

    second = config_lib.load(path, ["model.sharing=independent", f"distill.teacher_checkpoint={checkpoint}"])
    from pfd_tf.trainer import build_and_compile

    model = build_and_compile(second, tf.distribute.get_strategy())
    reader = tf.train.load_checkpoint(checkpoint)
    kernel = model.teacher.tower.hidden[0].kernel
    saved = reader.get_tensor("model/teacher/tower/hidden/0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_allclose(kernel.numpy(), saved)
    assert not any(v.ref() in {w.ref() for w in model.teacher.variables} for v in model.trainable_variables)

    metrics = train(second, str(tmp_path / "student_run"), verbose=0)
    assert metrics["teacher"] is not None
    # The frozen teacher did not move while the student trained.
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "student_run" / "checkpoints")))
    np.testing.assert_allclose(after.get_tensor("model/teacher/tower/hidden/0/kernel/.ATTRIBUTES/VARIABLE_VALUE"), saved)
