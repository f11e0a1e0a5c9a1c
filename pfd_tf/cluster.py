"""Who this process is in a parameter-server cluster, read from TF_CONFIG.

Every task of a cluster runs the same command (`pfd-train --config C
--model_dir D`); `TF_CONFIG` tells it its role:

- `ps`, `worker`: start a `tf.distribute.Server` and serve until killed;
- `chief`: build ParameterServerStrategy (its ClusterCoordinator is driven
  by `Model.fit`) and train;
- `evaluator`: evaluate each new checkpoint (`pfd_tf.sidecar`).

Without TF_CONFIG the process trains alone (single-machine mode).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping

ROLES = ("chief", "worker", "ps", "evaluator")


class ClusterError(ValueError):
    """TF_CONFIG is malformed or inconsistent; the message names the key."""


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


def serve(task: Task) -> None:
    """ps/worker: run a gRPC server for the coordinator until the process is killed."""
    from pfd_tf._keras import tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=task.type,
        task_index=task.index,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    print(f"{task.name}: serving at {task.cluster[task.type][task.index]}", flush=True)
    server.join()


def make_strategy(config):
    """chief: a ParameterServerStrategy over the TF_CONFIG cluster, tables sharded per `config.cluster`.

    `MinSizePartitioner` splits a variable into contiguous row ranges, and
    Keras' `Embedding` looks them up with `tf.nn.embedding_lookup`, whose
    ShardedVariable dispatch uses the matching `div` convention; checkpoints
    store the whole table, so export reads it back unsharded in row order.
    """
    from pfd_tf._keras import tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    num_ps = len(resolver.cluster_spec().as_dict().get("ps", []))
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=config.cluster.min_shard_bytes,
        max_shards=config.cluster.max_shards or num_ps,
    )
    return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
