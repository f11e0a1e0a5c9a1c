"""The chief's stall watchdog: a task that stops answering ends the run, named, within a bounded time.

Under ParameterServerStrategy a parameter server that hangs without dying
(`kill -STOP`, a frozen host, a partition that leaves its TCP connections
open) fails no RPC: the workers' steps wait on it, the chief waits on them
(or on it, saving a checkpoint), and nothing is said (150 s and more, issue
19).  Keras allows no batch-level callback under ParameterServerStrategy,
so a thread of the chief watches the steps where the coordinator runs them:
each completed closure (`train.steps_per_execution` steps) is progress.
After `cluster.stall_timeout_seconds` without one it asks every parameter
server and worker whether it answers, with an HTTP/2 handshake to its gRPC
server (`probe`: gRPC's own threads answer it, so a busy task answers; a
stopped, hung or unreachable one does not).

- A task that does not answer within `PROBE_SECONDS` ends the chief with
  the lost-task status (3) and a message naming it, its address and the
  last checkpoint.  `os._exit`: the main thread is blocked in TensorFlow,
  waiting on that task, and cannot be unwound.  `pfd-launch` then stops
  every task (or, with `--restart-on-failure`, restarts them all).
- When every task answers, the wait is not a lost task (slow steps, or the
  chief busy between steps: a checkpoint, a validation): it says so if
  steps are waiting, and waits on.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Callable, Mapping

from pfd_tf.cluster.spec import LOST_TASK, Task, lost_task_message

PROBE_SECONDS = 10.0  # a gRPC server's I/O threads answer a handshake in milliseconds, even under load
POLL_SECONDS = 1.0
# The client's connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5); a server's
# first frame in reply is its own SETTINGS.
_HANDSHAKE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_FRAME_HEADER = 9


def probe(address: str, timeout: float = PROBE_SECONDS) -> str | None:
    """None if the gRPC server at host:port answers an HTTP/2 handshake within `timeout` s; else why not."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.sendall(_HANDSHAKE)
            received = b""
            while len(received) < _FRAME_HEADER:
                chunk = conn.recv(_FRAME_HEADER - len(received))
                if not chunk:
                    return "closed the connection without answering"
                received += chunk
    except socket.timeout:
        return f"has not answered for {timeout:g} s: stopped or hung"
    except OSError as err:
        return f"cannot be reached ({err.strerror or err})"
    return None


def cluster_tasks(task: Task) -> dict[str, str]:
    """Name -> address of every parameter server and worker in this task's TF_CONFIG."""
    return {Task(role, i, task.cluster).name: address
            for role in ("ps", "worker") for i, address in enumerate(task.cluster.get(role, ()))}


class StallWatchdog:
    """Probes the cluster after each `timeout` s without a completed step; `on_lost(detail)` if a task is silent.

    `queue` is the ClusterCoordinator's closure queue (TensorFlow 2.21's
    `_CoordinatedClosureQueue`: `mark_finished` after each completed
    closure, `inflight_closure_count`, and the queue of those waiting).
    """

    def __init__(self, queue, tasks: Mapping[str, str], timeout: float, on_lost: Callable[[str], None],
                 probe_seconds: float = PROBE_SECONDS):
        self.tasks = dict(tasks)
        self.timeout = timeout
        self.probe_seconds = probe_seconds
        self._queue = queue
        self._on_lost = on_lost
        self._last_progress = time.monotonic()
        finished = queue.mark_finished

        def mark_finished():
            finished()
            self._last_progress = time.monotonic()

        queue.mark_finished = mark_finished  # an instance attribute: the coordinator's worker threads call it
        threading.Thread(target=self._watch, name="pfd-stall-watchdog", daemon=True).start()

    def _pending(self) -> int:
        return self._queue.inflight_closure_count + self._queue._queue.qsize()

    def _watch(self) -> None:
        checked = time.monotonic()
        while True:
            time.sleep(POLL_SECONDS)
            now = time.monotonic()
            waited = now - self._last_progress
            if now - max(checked, self._last_progress) < self.timeout:
                continue
            silent = self.silent_tasks()
            if silent:
                lost = "; ".join(f"{name} at {self.tasks[name]} {why}" for name, why in silent.items())
                self._on_lost(f"{lost}; no training step has completed for {waited:.0f} s")
                return
            if self._pending():
                print(f"pfd-train: warning: no training step has completed for {waited:.0f} s, though every "
                      f"task answers ({', '.join(self.tasks)}); waiting on (cluster.stall_timeout_seconds)",
                      file=sys.stderr, flush=True)
            checked = time.monotonic()

    def silent_tasks(self) -> dict[str, str]:
        """Name -> why, for each task that does not answer; probed all at once."""
        answers: dict[str, str | None] = {}

        def ask(name):
            answers[name] = probe(self.tasks[name], self.probe_seconds)

        threads = [threading.Thread(target=ask, args=(name,), daemon=True) for name in self.tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {name: answers[name] for name in self.tasks if answers.get(name)}


def watch_for_stalls(strategy, task: Task, timeout: float, model_dir: str) -> StallWatchdog | None:
    """chief: starts the watchdog on the strategy's coordinator (the one `fit` will use); None if `timeout` is 0."""
    if timeout <= 0:
        return None
    from pfd_tf._keras import tf

    coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)  # one per strategy

    def exit_lost(detail: str) -> None:
        print(f"pfd-train: error: {lost_task_message(detail, model_dir)}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(LOST_TASK)

    return StallWatchdog(coordinator._cluster.closure_queue, cluster_tasks(task), timeout, exit_lost)
