"""A real loopback cluster started by pfd-launch, and a chief it loses: relaunched and resumed, or restarted until
--max-restarts gives up (a worker: `test_cluster_faults.py`; a parameter server: `test_cluster_faults_ps.py`).

Every test starts chief, workers, parameter servers (and an evaluator) as
processes on 127.0.0.1, bounds its wait, and checks that no task survives.
"""
from __future__ import annotations

import os
import re
import signal

import pytest

from cluster_runs import STEPS, assert_all_gone, finish, launch, run_metrics, task_pid, wait_for_checkpoint
from cluster_runs import world  # noqa: F401  (a fixture)


def test_a_killed_chief_is_relaunched_and_resumes(world):
    config, model_dir = world
    proc = launch(config, model_dir, "--workers", "2", "--ps", "1", "--noevaluator", "--restart-on-failure")
    saved = wait_for_checkpoint(model_dir, 30)
    os.kill(task_pid(model_dir, "chief"), signal.SIGKILL)
    code, out = finish(proc)
    assert code == 0, out[-4000:]
    resumed = re.search(r"\[chief\] resumed from .*ckpt-(\d+) at step (\d+) \(lambda ([\d.]+)\)", out)
    assert resumed, out[-4000:]
    step = int(resumed.group(2))
    assert step >= saved and step == int(resumed.group(1))
    assert float(resumed.group(3)) == pytest.approx(0.5)  # past swap_step 25: the warm-up position survived
    assert run_metrics(model_dir)["steps"] == STEPS
    assert_all_gone(model_dir)


def test_restarts_that_keep_failing_give_up_with_a_message(world):
    """A chief that cannot come back (its config broken after the launch) is restarted --max-restarts
    times; then the launcher stops every task and exits with the chief's status."""
    config, model_dir = world
    proc = launch(config, model_dir, "--workers", "1", "--ps", "1", "--noevaluator", "--restart-on-failure",
                   "--max-restarts", "1")
    wait_for_checkpoint(model_dir, 10)
    with open(config, "a") as f:
        f.write("no_such_section: 1\n")
    os.kill(task_pid(model_dir, "chief"), signal.SIGKILL)
    code, out = finish(proc)
    assert code == 2, out[-4000:]
    assert "[launcher] chief was killed by SIGKILL (exit status 137)" in out
    assert "[launcher] restarting chief; it resumes from its last checkpoint" in out
    assert "no_such_section: unknown section" in out
    assert "[launcher] giving up: the last 1 restart(s) of chief did not come up (--max-restarts 1)" in out
    assert re.search(r"Last checkpoint: \S+ckpt-\d+; run pfd-launch again", out), out[-4000:]
    assert_all_gone(model_dir)
