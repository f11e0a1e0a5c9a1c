"""Runs the real trainer under ParameterServerStrategy on an in-process loopback cluster.

Usage: python tests/loopback_ps.py CONFIG MODEL_DIR [--set k=v ...]

Every worker and parameter server is a `tf.distribute.Server` in this process
on a free 127.0.0.1 port (the pattern of tf_keras's own PS tests); this
process is the coordinator.  It is a script, run in a subprocess by the
tests, because connecting to a cluster changes TensorFlow's eager context for
the rest of the process.  Prints one JSON line with what the test checks.
"""
from __future__ import annotations

import json
import os
import socket
import sys

import numpy as np

os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")

import pfd_tf  # noqa: E402,F401
from pfd_tf._keras import tf  # noqa: E402
from pfd_tf import config as config_lib  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_data_service(num_workers: int) -> str:
    """A tf.data service dispatcher and one tf.data worker per training worker; returns the dispatcher."""
    from pfd_tf.cluster.data_service import start_worker

    dispatcher = tf.data.experimental.service.DispatchServer(
        tf.data.experimental.service.DispatcherConfig(port=free_port()))
    address = dispatcher.target.split("://")[1]
    workers = []
    for _ in range(num_workers):
        port = free_port()
        workers.append(start_worker(f"127.0.0.1:{port}", address))
    start_data_service.servers = (dispatcher, workers)  # keep them alive
    return address


def start_cluster(num_workers: int, num_ps: int) -> tf.train.ClusterSpec:
    spec = {
        "worker": [f"127.0.0.1:{free_port()}" for _ in range(num_workers)],
        "ps": [f"127.0.0.1:{free_port()}" for _ in range(num_ps)],
    }
    cluster = tf.train.ClusterSpec(spec)
    worker_config = tf.compat.v1.ConfigProto()
    worker_config.inter_op_parallelism_threads = 4
    servers = []
    for job, count in (("worker", num_workers), ("ps", num_ps)):
        for i in range(count):
            servers.append(
                tf.distribute.Server(cluster, job_name=job, task_index=i, protocol="grpc",
                                     config=worker_config if job == "worker" else None, start=True)
            )
    start_cluster.servers = servers  # keep them alive
    return cluster


def read_results(stdout: str) -> dict:
    """The `RESULT {json}` lines `main` prints, merged."""
    results = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    return results


def main(argv):
    config_path, model_dir = argv[1], argv[2]
    overrides = [a.split("=", 1)[1] if a.startswith("--set=") else a for a in argv[3:] if a != "--set"]
    config = config_lib.load(config_path, overrides)
    cluster = start_cluster(num_workers=2, num_ps=2)
    data_service = start_data_service(num_workers=2)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster, rpc_layer="grpc")
    from pfd_tf.cluster.strategy import TablePartitioner

    strategy = tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=TablePartitioner(min_shard_bytes=1, max_shards=2))
    from pfd_tf.trainer import build_and_compile, train  # noqa: E402

    model = build_and_compile(config, strategy)
    print("RESULT " + json.dumps({"sharding": describe_sharding(model), "whole": whole_variables(model)}))
    metrics = train(config, model_dir, strategy=strategy, data_service=data_service)
    print("RESULT " + json.dumps({"metrics": metrics}))
    np.save(os.path.join(model_dir, "in_cluster_predictions.npy"), in_cluster_predictions(config, strategy, metrics))


def in_cluster_predictions(config, strategy, metrics):
    """Student probabilities on the held-out rows from a PS-placed (sharded) model, looked up remotely."""
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.trainer import build_and_compile

    model = build_and_compile(config, strategy)
    tf.train.Checkpoint(model=model).read(metrics["checkpoint"]).expect_partial()
    logits = [model(ids, training=False).numpy() for ids, _ in make_dataset_fn(config, "eval", 256, training=False)(None)]
    return 1 / (1 + np.exp(-np.concatenate(logits)))


def whole_variables(model) -> dict:
    """Every non-table variable (dense kernels, batch norm, metrics, the step): is it one piece?

    A partitioned variable's pieces are named `.../part_K`.
    """
    variables = list(model.variables) + [v for m in model.metrics for v in m.variables]
    names = [v.name for v in variables if "/embeddings" not in v.name]
    return {name: "/part_" not in name for name in names}


def describe_sharding(model) -> dict:
    """For each embedding table: shapes and devices of its shards and of their Adagrad accumulators.

    `trainable_variables` lists a ShardedVariable's shards one by one, and the
    tf_keras Adagrad makes one accumulator per shard, colocated with it.
    """
    from tensorflow.python.distribute.sharded_variable import ShardedVariable

    optimizer = model.optimizer
    out = {}
    tables = dict(model.student.tables)
    for teacher in model.teachers.values():
        tables.update(teacher.tables)
    for name, table in tables.items():
        variable = table.embeddings
        shards = variable.variables if isinstance(variable, ShardedVariable) else [variable]
        accumulators = [optimizer._accumulators[optimizer._index_dict[optimizer._var_key(v)]] for v in shards]
        out[name] = {
            "sharded": isinstance(variable, ShardedVariable),
            "table": [[list(v.shape), v.device] for v in shards],
            "accumulator": [[list(a.shape), a.device] for a in accumulators],
        }
    return out


if __name__ == "__main__":
    main(sys.argv)
