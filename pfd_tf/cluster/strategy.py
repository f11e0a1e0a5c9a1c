"""What the servers of a parameter-server cluster run: ps and worker tasks serve; the chief builds
ParameterServerStrategy, its embedding tables split across the parameter servers (`TablePartitioner`).

Who this process is (its `Task`, from TF_CONFIG) is in `pfd_tf.cluster.spec`.
"""
from __future__ import annotations

import contextlib
import threading

from pfd_tf.cluster.spec import Task, data_service_addresses, require_free


def serve(task: Task, data_service_port_offset: int = 1) -> None:
    """ps/worker: run a gRPC server for the coordinator until the process is killed.

    A worker also runs a tf.data worker beside it (`pfd_tf.cluster.data_service`),
    which registers with the chief's dispatcher once that is up.
    """
    from pfd_tf._keras import tf

    address = task.cluster[task.type][task.index]
    require_free(address, f"TF_CONFIG.cluster.{task.type}[{task.index}]")
    dispatcher, own = data_service_addresses(task, data_service_port_offset)
    if own is not None:
        require_free(own, f"the tf.data worker of {task.name} (cluster.data_service_port_offset)")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=task.type,
        task_index=task.index,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    data_worker = None
    if own is not None:
        from pfd_tf.cluster.data_service import start_worker

        data_worker = start_worker(own, dispatcher)
    print(f"{task.name}: serving at {address}", flush=True)
    server.join()
    del data_worker


TABLE_WEIGHT = "embeddings"  # the name Keras' Embedding gives its table
_creating = threading.local()  # the name of the variable being created, for TablePartitioner


class TablePartitioner:
    """Splits embedding tables across parameter servers; every other variable stays whole.

    Tables are what a step looks up by rows, so splitting them spreads the
    lookups and sparse updates; a dense kernel, a metric or a counter is read
    whole every step, and splitting it only makes each step gather its
    pieces again.  ParameterServerStrategy hands a partitioner the shape and
    dtype alone, so `table_partitioning()` records the name of the variable
    being created.  Tables are split by `MinSizePartitioner` into contiguous
    row ranges, which Keras' `Embedding` looks up with the matching `div`
    convention; checkpoints store each table whole.
    """

    def __init__(self, min_shard_bytes: int, max_shards: int):
        from pfd_tf._keras import tf

        self._split = tf.distribute.experimental.partitioners.MinSizePartitioner(
            min_shard_bytes=min_shard_bytes, max_shards=max_shards)

    def __call__(self, shape, dtype, axis=0):
        name = (getattr(_creating, "name", None) or "").split("/")[-1].split(":")[0]
        if name != TABLE_WEIGHT:
            return [1] * shape.rank
        return self._split(shape, dtype, axis)


def _note_name(next_creator, **kwargs):
    previous, _creating.name = getattr(_creating, "name", None), kwargs.get("name")
    try:
        return next_creator(**kwargs)
    finally:
        _creating.name = previous


@contextlib.contextmanager
def table_partitioning():
    """Enter inside `strategy.scope()` around model building, so `TablePartitioner` knows each variable's name."""
    from pfd_tf._keras import tf

    with tf.variable_creator_scope(_note_name):
        yield


def make_strategy(config):
    """chief: a ParameterServerStrategy over the TF_CONFIG cluster, tables sharded per `config.cluster`."""
    from pfd_tf._keras import tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    require_free(resolver.cluster_spec().as_dict()["chief"][0], "TF_CONFIG.cluster.chief[0]")
    num_ps = len(resolver.cluster_spec().as_dict().get("ps", []))
    partitioner = TablePartitioner(config.cluster.min_shard_bytes, config.cluster.max_shards or num_ps)
    return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
