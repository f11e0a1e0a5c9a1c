"""Runs a whole parameter-server cluster as local processes on 127.0.0.1.

Each task is `pfd-train` with its own TF_CONFIG and a free loopback port;
its output is relayed line by line behind its role (`[worker-1] ...`).  The
launcher tears everything down when the chief finishes or fails (children
are killed, none left behind) and returns the chief's exit status, as a
shell reports it: 128 + N for a chief killed by signal N (137 for SIGKILL).
Ctrl-C (SIGINT), SIGTERM (`timeout`, `kill`, service managers) and SIGHUP
(a closed terminal) stop the cluster the same way and exit with 128 + the
signal's number (130, 143, 129).  A launcher killed outright (SIGKILL)
cannot stop anything: each task then ends by itself (`pfd_tf.cluster.lifeline`,
armed through `PFD_LAUNCHER_PID`).

With `restart_on_failure` it does what the compose file's restart policy
does, and a little more:

- a failed worker or evaluator is started again at its address;
- a failed chief is started again and resumes from its last checkpoint;
  when it failed for a lost task (exit status 3: a parameter server died
  or stopped answering) the servers are restarted with it;
- a task whose port another process has taken meanwhile cannot come back at
  its address, and the chief's cluster cannot change while it runs: the
  whole cluster is restarted on free ports, the chief resuming from its
  last checkpoint;
- a restart counts as failed until the restarted task says it is up (a
  server: "serving at"; the chief: "resumed from" or a step; the evaluator:
  an evaluated checkpoint).  After `max_restarts` failed restarts in a row
  the launcher gives up: it stops every task and exits with the chief's
  status, or 3 (a lost task) when another task was the one failing.

`model_dir/cluster.json` lists every task's role, address and pid, so that
tests (and people) can find and kill one.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Sequence

from launch.final_evaluation import FINAL_EVALUATION_SECONDS, final_checkpoint_evaluated
from launch.ports import free_port, is_free, ports_of
from launch.topology import TASK_ENV, TASK_ENV_DEFAULTS, Topology, task_command, task_name, tf_config

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each stops the cluster as Ctrl-C does
LAUNCHER_PID = "PFD_LAUNCHER_PID"  # pfd_tf.cluster.lifeline.ENV (not imported: it would load TensorFlow here)
LOST_TASK = 3  # pfd-train's exit status for a lost task of the cluster (pfd_tf.cluster.spec.LOST_TASK)
CHIEF = ("chief", 0)
# What a task prints once it is up: a restart counts as failed until then.
UP = {
    "ps": re.compile(r"serving at"),
    "worker": re.compile(r"serving at"),
    "chief": re.compile(r"^(resumed from |step \d+/\d+)"),
    "evaluator": re.compile(r"^evaluator: step"),
}


def exit_status(code: int) -> int:
    """A Popen return code as a shell reports it: 128 + N for a process killed by signal N."""
    return 128 - code if code < 0 else code


def how_it_ended(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name} (exit status {exit_status(code)})"
    return f"exited with status {code}"


class LocalCluster:
    def __init__(
        self,
        topology: Topology,
        config: str,
        model_dir: str,
        overrides: Sequence[str] = (),
        restart_on_failure: bool = False,
        max_restarts: int = 3,
        python: str = sys.executable,
        out=sys.stdout,
    ):
        self.topology = topology
        self.model_dir = os.path.abspath(model_dir)
        self.command = task_command(python, os.path.abspath(config), self.model_dir, overrides)
        self.restart_on_failure = restart_on_failure
        self.max_restarts = max_restarts
        self.out = out
        self.ports = {task: free_port() for task in topology.tasks()}
        self.procs: dict[tuple[str, int], subprocess.Popen] = {}
        self.restarts = 0  # in all, for cluster.json
        self._failed: dict[tuple[str, int], int] = {}  # per task: its restarts in a row that have not come up
        self._probation: dict[int, tuple[str, int]] = {}  # pid of a restarted task not up yet -> its task
        self._relays: dict[int, threading.Thread] = {}
        self._handled: set[int] = set()  # pids whose exit the supervisor has dealt with
        self._quiet: set[int] = set()  # pids whose output is no longer relayed (being torn down)
        self._lock = threading.Lock()
        self._signalled = 0  # the first of STOP_SIGNALS received, 0 while none

    @property
    def cluster(self) -> dict[str, list[str]]:
        """The TF_CONFIG `cluster` of every task started from now on."""
        return self.topology.cluster(lambda role, i: f"127.0.0.1:{self.ports[(role, i)]}")

    # -- processes ---------------------------------------------------------
    def _start(self, role: str, index: int, restart: bool = False) -> None:
        """Starts one task, from the main thread only.

        The task's lifeline (`pfd_tf.cluster.lifeline`) fires when the thread that
        forked it exits, so a task started from a helper thread would be
        killed when that thread ends: `run` and `_supervise`, the only
        callers, run on the main thread, which lives as long as the launcher.
        """
        assert threading.current_thread() is threading.main_thread(), "tasks are started from the main thread"
        env = {**TASK_ENV_DEFAULTS, **os.environ, **TASK_ENV, "TF_CONFIG": tf_config(self.cluster, role, index),
               LAUNCHER_PID: str(os.getpid())}
        proc = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1, start_new_session=True,  # our signals reach it only through us
        )
        self.procs[(role, index)] = proc
        if restart:
            with self._lock:
                self._probation[proc.pid] = (role, index)
        relay = threading.Thread(target=self._relay, args=(role, index, proc), daemon=True)
        self._relays[proc.pid] = relay
        relay.start()
        self._write_state()

    def _relay(self, role: str, index: int, proc: subprocess.Popen) -> None:
        name, up = task_name(role, index), UP[role]
        for line in proc.stdout:
            if proc.pid in self._quiet:
                continue
            with self._lock:
                if proc.pid in self._probation and up.search(line):
                    self._failed[self._probation.pop(proc.pid)] = 0  # that restart worked
                self.out.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
                self.out.flush()

    def _stop(self, keys, grace: float = 5.0) -> None:
        procs = [self.procs[k] for k in keys if k in self.procs]
        for proc in procs:
            self._quiet.add(proc.pid)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped task (kill -STOP) must run to end
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _write_state(self) -> None:
        os.makedirs(self.model_dir, exist_ok=True)
        state = {
            "cluster": self.cluster,
            "tasks": {task_name(r, i): {"role": r, "index": i, "pid": p.pid} for (r, i), p in self.procs.items()},
            "restarts": self.restarts,
        }
        tmp = os.path.join(self.model_dir, "cluster.json.tmp")
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, os.path.join(self.model_dir, "cluster.json"))

    def _say(self, text: str) -> None:
        with self._lock:
            self.out.write(f"[launcher] {text}\n")
            self.out.flush()

    # -- supervision -------------------------------------------------------
    def run(self) -> int:
        """Starts every task, supervises until the chief is done; returns the chief's exit status.

        SIGINT, SIGTERM or SIGHUP stop every task and return 128 + the signal's number.
        """
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        try:
            for role, index in self.topology.tasks():
                if self._signalled:
                    break
                self._start(role, index)
            return self._supervise()
        finally:
            self._stop_all()  # a second signal is only recorded: it does not cut the teardown short
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum, frame):
        """Records the signal; the supervision loop (at most 0.2 s away) stops the cluster."""
        self._signalled = self._signalled or signum

    def _stop_all(self) -> None:
        """Stops the clients (chief, evaluator) before the servers they talk to (workers, then ps).

        So no client spends its last seconds retrying RPCs to a server
        already gone.  Nothing a task prints from here on is relayed: what
        the tasks say about each other going away is no news.
        """
        self._quiet.update(p.pid for p in self.procs.values())
        for roles in (("chief", "evaluator"), ("worker",), ("ps",)):
            self._stop([k for k in self.procs if k[0] in roles])

    def _supervise(self) -> int:
        while True:
            if self._signalled:
                self._say(f"{signal.Signals(self._signalled).name} received: stopping every task")
                return 128 + self._signalled
            time.sleep(0.2)
            for key, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or proc.pid in self._handled or proc.pid in self._quiet:
                    continue
                self._handled.add(proc.pid)
                self._relays[proc.pid].join(timeout=2)  # its last lines (an error message) first
                if key == CHIEF and code == 0:
                    return self._await_final_evaluation()
                if key[0] == "evaluator" and code == 0:
                    continue  # it evaluated the final checkpoint
                if key[0] == "ps":
                    self._say(f"{task_name(*key)} {how_it_ended(code)}")
                    continue  # its variables are gone: the chief stops (status 3), and is dealt with then
                status = self._on_failure(key, code)
                if status is not None:
                    return status
                break  # the tasks changed: look again

    def _await_final_evaluation(self) -> int:
        """The chief finished: 0 once a running evaluator has evaluated the final checkpoint (or has exited, or
        `FINAL_EVALUATION_SECONDS` passed: then it is stopped with the cluster); 128 + a signal's number."""
        evaluators = [p for k, p in self.procs.items() if k[0] == "evaluator" and p.poll() is None]
        if evaluators and not final_checkpoint_evaluated(self.model_dir):
            self._say("chief finished; waiting for the evaluator to evaluate the final checkpoint")
            deadline = time.monotonic() + FINAL_EVALUATION_SECONDS
            while not final_checkpoint_evaluated(self.model_dir) and any(p.poll() is None for p in evaluators):
                if self._signalled:
                    return 128 + self._signalled
                if time.monotonic() > deadline:
                    self._say(f"the evaluator did not evaluate the final checkpoint within "
                              f"{FINAL_EVALUATION_SECONDS:.0f} s; stopping it")
                    break
                time.sleep(0.2)
        self._say("chief finished; stopping the cluster")
        return 0

    def _on_failure(self, key: tuple[str, int], code: int) -> int | None:
        """Restarts what a failed task needs; the launcher's exit status when it stops instead."""
        name = task_name(*key)
        self._say(f"{name} {how_it_ended(code)}")
        if not self.restart_on_failure:
            return exit_status(code) if key == CHIEF else None  # the coordinator runs on without a worker
        with self._lock:
            failed = self._failed.get(key, 0)
            if failed < self.max_restarts:
                self._failed[key] = failed + 1
        if failed >= self.max_restarts:
            self._say(f"giving up: the last {failed} restart(s) of {name} did not come up (--max-restarts "
                      f"{self.max_restarts}); stopping every task. Last checkpoint: {self._last_checkpoint()}; "
                      "run pfd-launch again to resume from it")
            return exit_status(code) if key == CHIEF else LOST_TASK
        self.restarts += 1
        lost_servers = [k for k, p in self.procs.items() if k[0] == "ps" and p.poll() is not None]
        whole = key == CHIEF and (code == LOST_TASK or lost_servers)
        taken = self._taken_ports(key)
        if taken:
            self._restart_all(key, f"{taken} is taken by another process, and the chief's cluster cannot change: "
                                   "restarting every task, on free ports; the chief resumes from its last checkpoint")
        elif whole:
            self._restart_all(key, "a task of the cluster was lost: restarting every task; the chief resumes from "
                                   "its last checkpoint")
        else:
            resumes = "; it resumes from its last checkpoint" if key == CHIEF else ""
            self._say(f"restarting {name}{resumes}")
            self._start(*key, restart=True)
        return None

    def _taken_ports(self, key: tuple[str, int]) -> str:
        """`name's port 127.0.0.1:P` if another process listens on a port of the (exited) task `key`, else ''."""
        taken = [port for port in ports_of(key[0], self.ports[key]) if not is_free(port)]
        return f"{task_name(*key)}'s port 127.0.0.1:{taken[0]}" if taken else ""

    def _restart_all(self, failed: tuple[str, int], reason: str) -> None:
        """Stops every task and starts them all again, each on a free port (its own while that is free).

        Only `failed`, the task whose failure this is, is on probation: its
        coming up is what makes the restart a success.
        """
        self._say(reason)
        self._stop_all()
        for key in self.ports:
            if not all(is_free(port) for port in ports_of(key[0], self.ports[key])):
                self.ports[key] = free_port()
        for role, index in self.topology.tasks():
            self._start(role, index, restart=(role, index) == failed)

    def _last_checkpoint(self) -> str:
        """The checkpoint the chief would resume from (its CheckpointManager's state file), or 'none'."""
        try:
            with open(os.path.join(self.model_dir, "checkpoints", "checkpoint"), encoding="utf-8") as f:
                found = re.search(r'^model_checkpoint_path: "(.*)"', f.read(), re.M)
        except OSError:
            found = None
        if not found:
            return "none"
        return os.path.join(self.model_dir, "checkpoints", found.group(1))
