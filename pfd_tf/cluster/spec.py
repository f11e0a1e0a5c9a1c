"""Who this process is in a parameter-server cluster, read from TF_CONFIG.

Every task of a cluster runs the same command (`pfd-train --config C
--model_dir D`); `TF_CONFIG` tells it its role:

- `ps`, `worker`: start a `tf.distribute.Server` and serve until killed;
- `chief`: build ParameterServerStrategy (its ClusterCoordinator is driven
  by `Model.fit`) and train;
- `evaluator`: evaluate each new checkpoint (`pfd_tf.cluster.sidecar`).

Without TF_CONFIG the process trains alone (single-machine mode).  What each role
runs (servers, the chief's strategy) is in `pfd_tf.cluster.strategy`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from typing import Mapping

ROLES = ("chief", "worker", "ps", "evaluator")
LOST_TASK = 3  # pfd-train's exit status when a task of the cluster is lost (and pfd-launch's, giving up)


class ClusterError(ValueError):
    """TF_CONFIG is malformed or inconsistent, or names an address this task cannot listen on."""


def lost_task_message(detail: str, model_dir: str) -> str:
    """What the chief says when a task is lost: which, why, and the checkpoint a relaunch resumes from."""
    from pfd_tf._keras import tf

    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return (f"lost a task of the cluster ({detail}). Last checkpoint: {checkpoint or 'none'}; "
            "relaunch the cluster to resume from it.")


def require_free(address: str, what: str) -> None:
    """ClusterError unless this process can listen on `address` (host:port): no other process listens there.

    TensorFlow's servers fail on a taken port with a raw gRPC traceback
    ("Could not start gRPC server"); this names the address and the key.
    """
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's servers do
        try:
            probe.bind((host, int(port)))
        except OSError as err:
            raise ClusterError(f"{what}: cannot listen on {address} ({err.strerror}): another process holds "
                               "the port") from None


@dataclasses.dataclass(frozen=True)
class Task:
    type: str
    index: int
    cluster: Mapping[str, tuple[str, ...]]

    @property
    def name(self) -> str:
        return self.type if self.type in ("chief", "evaluator") else f"{self.type}-{self.index}"


def current_task(environ: Mapping[str, str] = os.environ) -> Task | None:
    """The task TF_CONFIG describes, or None in single-machine mode."""
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ClusterError(f"TF_CONFIG: not valid JSON ({err.msg} at column {err.colno})") from None
    cluster = tf_config.get("cluster")
    task = tf_config.get("task")
    if not isinstance(cluster, dict):
        raise ClusterError("TF_CONFIG.cluster: missing, expected {job: [host:port, ...]}")
    if not isinstance(task, dict):
        raise ClusterError("TF_CONFIG.task: missing, expected {type: ..., index: ...}")
    for job, addresses in cluster.items():
        if job not in ROLES:
            raise ClusterError(f"TF_CONFIG.cluster.{job}: unknown job (known: {', '.join(ROLES)})")
        if not isinstance(addresses, list) or not addresses:
            raise ClusterError(f"TF_CONFIG.cluster.{job}: expected a non-empty list of host:port")
    role, index = task.get("type"), task.get("index", 0)
    if role not in ROLES:
        raise ClusterError(f"TF_CONFIG.task.type: unknown role {role!r} (known: {', '.join(ROLES)})")
    if not isinstance(index, int) or index < 0:
        raise ClusterError(f"TF_CONFIG.task.index: expected a non-negative integer, got {index!r}")
    if role != "evaluator":
        if role not in cluster:
            raise ClusterError(f"TF_CONFIG.task.type: {role!r} has no entry in TF_CONFIG.cluster")
        if index >= len(cluster[role]):
            raise ClusterError(
                f"TF_CONFIG.task.index: {index} but TF_CONFIG.cluster.{role} lists {len(cluster[role])}"
            )
    for job in ("chief", "ps", "worker"):
        if job not in cluster:
            raise ClusterError(f"TF_CONFIG.cluster.{job}: missing (a PS cluster needs chief, worker and ps)")
    return Task(role, index, {job: tuple(a) for job, a in cluster.items()})


def data_service_addresses(task: Task, offset: int) -> tuple[str, str | None]:
    """(the dispatcher's address, this task's tf.data worker address or None): ports shifted by `offset`."""
    from pfd_tf.cluster.data_service import shifted

    dispatcher = shifted(task.cluster["chief"][0], offset)
    own = shifted(task.cluster[task.type][task.index], offset) if task.type == "worker" else None
    return dispatcher, own


def dispatcher_journal(model_dir: str, task: Task) -> str:
    """Where the chief's tf.data dispatcher journals its state: one directory per cluster.

    A chief restarted into the same cluster (same addresses: its workers, and
    their tf.data workers, live on) reads the journal back and numbers its
    jobs and tasks on from the lost dispatcher's.  A cluster launched anew
    at other addresses gets a fresh one: the lost cluster's tf.data workers
    are not waited for (with one journal for all, a relaunch took 230 s
    instead of 44: tests/cluster/test_cluster_faults_ps.py).
    """
    import hashlib

    spec = json.dumps({job: list(addresses) for job, addresses in sorted(task.cluster.items())})
    return os.path.join(model_dir, "tf_data_service", hashlib.sha1(spec.encode()).hexdigest()[:12])
