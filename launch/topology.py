"""The shape of a cluster and the exact command each of its tasks runs.

Shared by the local launcher (processes on 127.0.0.1) and the docker-compose
generator (one service per task), so both start every role with the same
`pfd-train` command and consistent TF_CONFIGs.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Callable, Sequence

TRAIN_MODULE = "pfd_tf.cli.train"
# The environment of every task, local or in compose.  Each must precede TensorFlow's start in the task.
TASK_ENV = {
    "GRPC_FAIL_FAST": "use_caller",  # an RPC to a lost peer fails at once, so the coordinator reschedules
    "PYTHONUNBUFFERED": "1",  # lines reach the relay (or `docker compose logs`) as they are printed
}
# Defaults a user's own setting overrides (pfd_tf sets the same when imported).  Not 3: that would hide
# TensorFlow's C++ errors, e.g. the gRPC details of a lost task.  TensorFlow's start-up lines, which no
# setting reaches, are filtered by pfd_tf.quiet_start; gRPC's own GRPC_VERBOSITY (ERROR) and GRPC_TRACE
# (none) are left at their defaults, which print only errors.
TASK_ENV_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclasses.dataclass(frozen=True)
class Topology:
    workers: int
    ps: int
    evaluator: bool = True

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"--workers: a cluster needs at least one worker, got {self.workers}")
        if self.ps < 1:
            raise ValueError(f"--ps: a cluster needs at least one parameter server, got {self.ps}")

    def tasks(self) -> list[tuple[str, int]]:
        """(role, index) of every task, servers first so they are up when the chief connects."""
        out = [("ps", i) for i in range(self.ps)] + [("worker", i) for i in range(self.workers)]
        out.append(("chief", 0))
        if self.evaluator:
            out.append(("evaluator", 0))
        return out

    def cluster(self, address: Callable[[str, int], str]) -> dict[str, list[str]]:
        """The TF_CONFIG `cluster` dict; `address(role, index)` gives host:port."""
        return {
            "chief": [address("chief", 0)],
            "worker": [address("worker", i) for i in range(self.workers)],
            "ps": [address("ps", i) for i in range(self.ps)],
        }


def task_name(role: str, index: int) -> str:
    """`chief`, `evaluator` (one of each), `worker-3`, `ps-0`: service and log-prefix names."""
    return role if role in ("chief", "evaluator") else f"{role}-{index}"


def tf_config(cluster: dict[str, list[str]], role: str, index: int) -> str:
    """TF_CONFIG of one task (the evaluator is not part of the cluster spec)."""
    return json.dumps({"cluster": cluster, "task": {"type": role, "index": index}})


def task_command(python: str, config: str, model_dir: str, overrides: Sequence[str] = ()) -> list[str]:
    """The command every task runs; its role comes from TF_CONFIG alone."""
    command = [python, "-m", TRAIN_MODULE, "--config", config, "--model_dir", model_dir]
    for item in overrides:
        command += ["--set", item]
    return command
