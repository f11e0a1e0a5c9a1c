"""A real loopback cluster started by pfd-launch, and a parameter server it loses: killed (exit status 3, a relaunch
resumes) or stopped (named by the stall watchdog) (a worker: `test_cluster_faults.py`; the chief:
`test_cluster_faults_chief.py`).

Every test starts chief, workers, parameter servers (and an evaluator) as
processes on 127.0.0.1, bounds its wait, and checks that no task survives.
"""
from __future__ import annotations

import os
import re
import signal
import time

from cluster_runs import (LONG, STEPS, assert_all_gone, finish, launch, run_metrics, task_address, task_pid,
                          wait_for_checkpoint)
from cluster_runs import world  # noqa: F401  (a fixture)


def test_a_killed_ps_stops_the_chief_clearly_and_a_relaunch_resumes(world):
    config, model_dir = world
    proc = launch(config, model_dir, "--workers", "1", "--ps", "2", "--noevaluator")
    saved = wait_for_checkpoint(model_dir, 10)
    os.kill(task_pid(model_dir, "ps-1"), signal.SIGKILL)
    code, out = finish(proc)
    assert code == 3, out[-4000:]
    assert "lost a task of the cluster" in out and "relaunch the cluster to resume" in out
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))
    assert_all_gone(model_dir)

    code, out = finish(launch(config, model_dir, "--workers", "1", "--ps", "2", "--noevaluator"))
    assert code == 0, out[-4000:]
    assert re.search(r"resumed from .* at step (\d+)", out) and int(
        re.search(r"at step (\d+)", out).group(1)) >= saved
    assert run_metrics(model_dir)["steps"] == STEPS


def test_a_stopped_ps_is_named_within_the_stall_timeout_and_the_cluster_stops(world):
    """`kill -STOP` fails no RPC: the chief's watchdog sees no step for cluster.stall_timeout_seconds, finds
    the task that does not answer, and stops with the lost-task status, naming it and the last checkpoint.
    (Before the watchdog: no message for 150 s and more.)"""
    config, model_dir = world
    stall = 10
    proc = launch(config, model_dir, "--workers", "1", "--ps", "2", "--noevaluator",
                   sets=LONG + [f"cluster.stall_timeout_seconds={stall}"])
    wait_for_checkpoint(model_dir, 10)
    ps = task_pid(model_dir, "ps-1")
    os.kill(ps, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        code, out = finish(proc, timeout=240)
    except BaseException:
        os.kill(ps, signal.SIGKILL)  # a stopped task would ignore its lifeline's SIGTERM and stay behind
        raise
    waited = time.monotonic() - stopped
    assert code == 3, out[-4000:]
    checkpoint = re.search(r"Last checkpoint: (\S+ckpt-\d+);", out)
    assert checkpoint and f"ps-1 at {task_address(model_dir, 'ps', 1)} has not answered" in out, out[-4000:]
    assert int(checkpoint.group(1).rsplit("-", 1)[1]) >= 10
    assert "ps-0" not in out.split("lost a task of the cluster")[1].split("Last checkpoint")[0]  # ps-0 answered
    # The watchdog's own bound: the stall timeout and one probe (PROBE_SECONDS 10), plus the teardown;
    # generous for a loaded 2-core machine, far below the silence it replaces.
    assert waited < stall + 10 + 60, waited
    assert_all_gone(model_dir)
