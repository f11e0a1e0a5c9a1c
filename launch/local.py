"""Runs a whole parameter-server cluster as local processes on 127.0.0.1.

Each task is `pfd-train` with its own TF_CONFIG and a free loopback port;
its output is relayed line by line behind its role (`[worker-1] ...`).  The
launcher tears everything down when the chief finishes or fails (children
are killed, none left behind), forwards Ctrl-C, and returns the chief's exit
status.  With `restart_on_failure` it does what the compose file's restart
policy does: a failed worker or evaluator is started again; a failed chief
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

from launch.topology import Topology, task_command, task_name, tf_config

DATA_SERVICE_PORTS = 1  # the tf.data servers' ports beside each task's (the default offset 1)


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

    # -- processes ---------------------------------------------------------
    def _start(self, role: str, index: int) -> None:
        env = {**os.environ, "TF_CONFIG": tf_config(self.cluster, role, index), "GRPC_FAIL_FAST": "use_caller",
               "PYTHONUNBUFFERED": "1"}
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
        """Starts every task, supervises until the chief is done; returns the chief's exit status."""
        previous = signal.signal(signal.SIGINT, self._interrupt)
        try:
            for role, index in self.topology.tasks():
                self._start(role, index)
            return self._supervise()
        except KeyboardInterrupt:
            self._say("interrupted: stopping every task")
            return 130
        finally:
            self._stop(list(self.procs))
            signal.signal(signal.SIGINT, previous)

    def _interrupt(self, signum, frame):
        raise KeyboardInterrupt

    def _supervise(self) -> int:
        chief = ("chief", 0)
        while True:
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
