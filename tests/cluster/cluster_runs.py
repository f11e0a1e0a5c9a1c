"""Starting a real loopback cluster with pfd-launch, and reading what it leaves in its model_dir, for the
cluster tests (`test_cluster_runtime.py`, `test_cluster_faults*.py`, `test_visitation*.py`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 60
LONG = ["train.steps=60", "train.log_every=10", "distill.swap_step=25", "train.learning_rate=0.5"]


def launch(config, model_dir, *args, sets=LONG):
    command = [sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir, *args]
    for item in sets:
        command += ["--set", item]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})


def finish(proc, timeout=300):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail("cluster did not finish in time:\n" + out[-4000:])
    return proc.returncode, out


def wait_for_checkpoint(model_dir, step, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = committed_step(model_dir)
        if latest >= step:
            return latest
        time.sleep(0.2)
    pytest.fail(f"no checkpoint at step >= {step} within {timeout}s")


def committed_step(model_dir):
    """The step of the checkpoint the CheckpointManager has committed (its state file names it).

    A `ckpt-N.index` file exists a moment before it is committed; a chief killed then
    resumes from the previous one, rightly.
    """
    from pfd_tf._keras import tf

    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def task_pid(model_dir, task):
    with open(os.path.join(model_dir, "cluster.json")) as f:
        return json.load(f)["tasks"][task]["pid"]


def assert_all_gone(model_dir):
    with open(os.path.join(model_dir, "cluster.json")) as f:
        pids = [t["pid"] for t in json.load(f)["tasks"].values()]
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie has exited; anything else is an orphan.
        with open(f"/proc/{pid}/stat") as stat:
            assert stat.read().split()[2] == "Z", f"task pid {pid} still running"


def run_metrics(model_dir):
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


@pytest.fixture()
def world(tmp_path):
    return write_tiny_world(str(tmp_path), rows=2000), str(tmp_path / "run")


def task_address(model_dir, job, index):
    with open(os.path.join(model_dir, "cluster.json")) as f:
        return json.load(f)["cluster"][job][index]
