"""A real loopback cluster started by pfd-launch, and the failures it survives or names: a killed worker,
chief or parameter server, a stopped one, a port taken, restarts that keep failing.

Every test starts chief, workers, parameter servers (and an evaluator) as
processes on 127.0.0.1, bounds its wait, and checks that no task survives.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

from cluster_runs import (LONG, STEPS, assert_all_gone, finish, launch, run_metrics, task_address, task_pid,
                          wait_for_checkpoint)
from cluster_runs import world  # noqa: F401  (a fixture)


def test_a_killed_worker_loses_no_step(world):
    config, model_dir = world
    proc = launch(config, model_dir, "--workers", "2", "--ps", "1", "--noevaluator")
    wait_for_checkpoint(model_dir, 10)
    os.kill(task_pid(model_dir, "worker-1"), signal.SIGKILL)
    code, out = finish(proc)
    assert code == 0, out[-4000:]
    # How long the others stall (was ~100 s, now ~10 s) is measured by benchmarks/cluster_faults.py, not here.
    assert "[launcher] worker-1 was killed by SIGKILL (exit status 137)" in out
    # No step is lost. The coordinator runs a lost worker's closure again elsewhere (at least once): the
    # steps of it that had reached the servers before the worker died count twice.  A closure is
    # CLUSTER_STEPS_PER_EXECUTION steps (seen: 62 of 60 in one of five runs here).
    from pfd_tf.trainer import CLUSTER_STEPS_PER_EXECUTION

    assert STEPS <= run_metrics(model_dir)["steps"] <= STEPS + CLUSTER_STEPS_PER_EXECUTION
    assert_all_gone(model_dir)


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


def test_a_worker_whose_port_was_taken_moves_the_cluster_to_free_ports(world):
    """--restart-on-failure: worker-1 dies and another process takes its port before the restart.  The
    chief's ClusterSpec cannot change, so the launcher restarts every task on free ports and the chief
    resumes from its checkpoint (before: three raw gRPC tracebacks, then a crawl until killed)."""
    import socket

    config, model_dir = world
    proc = launch(config, model_dir, "--workers", "2", "--ps", "1", "--noevaluator", "--restart-on-failure")
    wait_for_checkpoint(model_dir, 10)
    taken = int(task_address(model_dir, "worker", 1).rsplit(":", 1)[1])
    taker = socket.socket()
    taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    os.kill(proc.pid, signal.SIGSTOP)  # the launcher looks again only once the port is taken
    try:
        os.kill(task_pid(model_dir, "worker-1"), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:
            try:
                taker.bind(("127.0.0.1", taken))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        taker.listen()
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    try:
        code, out = finish(proc)
    finally:
        taker.close()
    assert code == 0, out[-4000:]
    assert f"worker-1's port 127.0.0.1:{taken} is taken by another process" in out, out[-4000:]
    assert "restarting every task, on free ports" in out
    assert re.search(r"\[chief\] resumed from .*ckpt-\d+ at step (\d+)", out), out[-4000:]
    assert task_address(model_dir, "worker", 1) != f"127.0.0.1:{taken}"
    assert "Traceback" not in out and "Could not start gRPC server" not in out
    from pfd_tf.trainer import CLUSTER_STEPS_PER_EXECUTION

    assert STEPS <= run_metrics(model_dir)["steps"] <= STEPS + CLUSTER_STEPS_PER_EXECUTION
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
