"""The tf.data service that feeds a parameter-server cluster: each training row once per epoch.

Under ParameterServerStrategy the dataset function is traced once, on the
chief, and every worker runs it with `InputContext(1, 0)`
(`parameter_server_strategy_v2.py`): a split by `input_pipeline_id` never
happens, and every worker reads its own shuffle of all the files.
TensorFlow's answer, which its parameter-server guide recommends for
visitation guarantees, is the tf.data service:

- the chief runs the **dispatcher** (on its port + `cluster.data_service_port_offset`);
- each worker runs a **tf.data worker** beside its `tf.distribute.Server`
  (on its port + the offset), which reads and parses the blocks the
  dispatcher hands it;
- the training workers read batches from one shared job, with **dynamic
  sharding** (`ShardingPolicy.DYNAMIC`): each block (one file of one epoch,
  `pfd_tf.data.stream.cluster_blocks`) goes to one tf.data worker and each
  batch to one training worker, so within an epoch every row is read once
  across all workers.  Batches a worker has read ahead (one at most, with
  `max_outstanding_requests=1`) are what an epoch boundary or the end of a
  run can shift: a row is read E times in E epochs within a batch per worker
  (measured on 2 workers, tests/test_visitation.py: 2 batches of a 32-batch
  epoch each way, 3 with steps_per_execution 8).

A lost worker takes its tf.data worker with it: the blocks it was reading
are lost for that epoch (the rest of one file), and the dispatcher hands
the rest to the others.  A restarted chief starts a new dispatcher and job,
from the blocks its checkpoint had not consumed.
"""
from __future__ import annotations

import uuid

from pfd_tf._keras import tf

JOB_GC_SECONDS = 10
# A tf.data worker that has not reported for this long is dropped, its blocks handed to the others:
# with the defaults (heartbeats every 30 s) a killed worker held up the others' reads for minutes
# (tests/test_cluster_runtime.py: 133 s instead of 24), and a relaunched cluster's dispatcher, restored
# from its journal, kept the lost cluster's workers.
HEARTBEAT_SECONDS = 1
WORKER_TIMEOUT_SECONDS = 5


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def shifted(address: str, offset: int) -> str:
    """host:port -> host:(port + offset): where a task's tf.data server listens."""
    host, port = address.rsplit(":", 1)
    return f"{host}:{int(port) + offset}"


def start_dispatcher(chief_address: str, offset: int, work_dir: str) -> tf.data.experimental.service.DispatchServer:
    """The dispatcher, in the chief's process; keep the returned server alive while training.

    Its state is journaled in `work_dir` (in the model_dir): a restarted
    chief's dispatcher then numbers its jobs and tasks on from the lost one's,
    so that a tf.data worker, which outlives the chief, never takes a new
    task for one of the old job's.  (Without it, one relaunch in four re-read
    the first blocks: tests/test_visitation.py.)  A job no one reads is
    dropped after `JOB_GC_SECONDS`, a silent tf.data worker after `WORKER_TIMEOUT_SECONDS`.
    """
    config = tf.data.experimental.service.DispatcherConfig(
        port=port_of(shifted(chief_address, offset)),
        work_dir=work_dir,
        fault_tolerant_mode=True,
        job_gc_check_interval_ms=1000,
        job_gc_timeout_ms=JOB_GC_SECONDS * 1000,
        worker_timeout_ms=WORKER_TIMEOUT_SECONDS * 1000,
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(worker_address: str, dispatcher_address: str) -> tf.data.experimental.service.WorkerServer:
    """A tf.data worker at `worker_address`, registered with the dispatcher (which may start later)."""
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher_address, worker_address=worker_address, port=port_of(worker_address),
        heartbeat_interval_ms=HEARTBEAT_SECONDS * 1000)
    return tf.data.experimental.service.WorkerServer(config)


class ServiceDataset:
    """A dataset registered with the dispatcher once, on the chief; each worker reads it by id.

    Registering inside the dataset function would make each worker serialize
    a dataset whose lookup tables (the FeatureEncoder's) live on the chief;
    registering here, where they are, lets the tf.data workers rebuild them.
    Call `read()` in the dataset function: one shared job, dynamic sharding,
    one batch read ahead per worker.  The job is this object's own (a name
    with a random part): `fit` calls of one chief share it and read on, a
    restarted chief starts a new one.
    """

    def __init__(self, dataset: tf.data.Dataset, dispatcher_address: str):
        self.job_name = f"pfd_train_{uuid.uuid4().hex[:12]}"
        self.service = f"grpc://{dispatcher_address}"
        self.element_spec = dataset.element_spec
        self.dataset_id = tf.data.experimental.service.register_dataset(self.service, dataset)

    def read(self) -> tf.data.Dataset:
        return tf.data.experimental.service.from_dataset_id(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=self.service,
            dataset_id=self.dataset_id,
            element_spec=self.element_spec,
            job_name=self.job_name,
            max_outstanding_requests=1,
        )
