"""Runs a whole parameter-server cluster as local processes on 127.0.0.1.

Each task is `pfd-train` with its own TF_CONFIG and a free loopback port;
its output is relayed line by line behind its role (`[worker-1] ...`).  The
launcher tears everything down when the chief finishes or fails (children
are killed, none left behind) and returns the chief's exit status.  Ctrl-C
(SIGINT), SIGTERM (`timeout`, `kill`, service managers) and SIGHUP (a closed
terminal) stop the cluster the same way and exit with 128 + the signal's
number (130, 143, 129).  A launcher killed outright (SIGKILL) cannot stop
anything: each task then ends by itself (`pfd_tf.lifeline`, armed through
`PFD_LAUNCHER_PID`).  With `restart_on_failure` it does what the compose
file's restart policy does: a failed worker or evaluator is started again; a failed chief
is started again, after restarting the servers too if a parameter server
died (the chief then resumes from its last checkpoint).

`model_dir/cluster.json` lists every task's role, address and pid, so that
tests (and people) can find and kill one.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Sequence

from launch.topology import TASK_ENV, TASK_ENV_DEFAULTS, Topology, task_command, task_name, tf_config

DATA_SERVICE_PORTS = 1  # the tf.data servers' ports beside each task's (the default offset 1)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each stops the cluster as Ctrl-C does
LAUNCHER_PID = "PFD_LAUNCHER_PID"  # pfd_tf.lifeline.ENV (not imported: it would load TensorFlow here)


def free_port(also_free: int = 0) -> int:
    """A free loopback port p whose next `also_free` ports are free too.

    A chief's and each worker's tf.data server listen on the task's port +
    `cluster.data_service_port_offset` (1 by default), so those are checked as well.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + also_free < 65536 and all(_is_free(port + k) for k in range(1, also_free + 1)):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
        ports = {task: free_port(also_free=DATA_SERVICE_PORTS) for task in topology.tasks()}
        self.cluster = topology.cluster(lambda role, i: f"127.0.0.1:{ports[(role, i)]}")
        self.procs: dict[tuple[str, int], subprocess.Popen] = {}
        self.restarts = 0
        self._quiet: set[int] = set()  # pids whose output is no longer relayed (being torn down)
        self._lock = threading.Lock()
        self._signalled = 0  # the first of STOP_SIGNALS received, 0 while none

    # -- processes ---------------------------------------------------------
    def _start(self, role: str, index: int) -> None:
        """Starts one task, from the main thread only.

        The task's lifeline (`pfd_tf.lifeline`) fires when the thread that
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
        threading.Thread(target=self._relay, args=(task_name(role, index), proc), daemon=True).start()
        self._write_state()

    def _relay(self, name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if proc.pid in self._quiet:
                continue
            with self._lock:
                self.out.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
                self.out.flush()

    def _stop(self, keys, grace: float = 5.0) -> None:
        procs = [self.procs[k] for k in keys if k in self.procs]
        for proc in procs:
            self._quiet.add(proc.pid)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
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
        chief = ("chief", 0)
        while True:
            if self._signalled:
                self._say(f"{signal.Signals(self._signalled).name} received: stopping every task")
                return 128 + self._signalled
            time.sleep(0.2)
            code = self.procs[chief].poll()
            if code == 0:
                self._say("chief finished; stopping the cluster")
                return 0
            if code is not None:
                if not self._may_restart():
                    self._say(f"chief failed with exit status {code}")
                    return code
                self._restart_chief(code)
                continue
            for (role, index), proc in list(self.procs.items()):
                if role in ("worker", "evaluator") and proc.poll() is not None and proc.pid not in self._quiet:
                    if role == "evaluator" and proc.returncode == 0:
                        continue  # it evaluated the final checkpoint
                    self._say(f"{task_name(role, index)} exited with status {proc.returncode}")
                    self._quiet.add(proc.pid)
                    if self._may_restart():
                        self._say(f"restarting {task_name(role, index)}")
                        self._start(role, index)

    def _may_restart(self) -> bool:
        if not self.restart_on_failure or self.restarts >= self.max_restarts:
            return False
        self.restarts += 1
        return True

    def _restart_chief(self, code: int) -> None:
        dead_ps = [k for k, p in self.procs.items() if k[0] == "ps" and p.poll() is not None]
        if dead_ps:
            # Variables lived on the lost server: restart the servers; the chief restores the checkpoint.
            self._say(f"chief failed ({code}) after {task_name(*dead_ps[0])} was lost: restarting the cluster")
            servers = [k for k in self.procs if k[0] in ("ps", "worker")]
            self._stop(servers)
            for role, index in servers:
                self._start(role, index)
        else:
            self._say(f"chief failed ({code}): restarting it; it resumes from the last checkpoint")
        self._start("chief", 0)
