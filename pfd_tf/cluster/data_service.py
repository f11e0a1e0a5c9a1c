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
- the training workers read from one shared job, with **dynamic sharding**
  (`ShardingPolicy.DYNAMIC`): each block (one file of one epoch,
  `pfd_tf.data.stream.cluster_blocks`) goes to one tf.data worker and each
  element to one training worker, so within an epoch every row is read once
  across all workers.

Which rows a run trains.  At an epoch's end the tf.data workers are at
different places and some rows of the next epoch are trained before the
last of this one's; none is lost.  What is lost is what a training worker
holds read ahead when the `fit` call that reads it ends, the run's end
included: a row is read E times in E epochs but for those.  So:

- the training workers put their batches together from the elements the
  tf.data workers send (`ServiceDataset.read`), with no read-ahead of their
  own (`INPUT_OPTIONS`): a worker holds `HELD_ELEMENTS` elements at most
  (three whole batches before);
- the run's last blocks (one more than there are workers) are read in
  chunks of `TAIL_CHUNK_BATCHES` batches, sent in elements of an eighth of
  a batch (`ELEMENTS_PER_BATCH`; whole batches before them, as RPCs per
  step cost throughput), so what is held at the end is small;
- then comes a margin of `read_ahead_rows` rows (what the other workers may
  hold), then the overflow, whose first block waits
  `OVERFLOW_DELAY_SECONDS` on each tf.data worker: the run's last rows
  still in other tf.data workers are read before it.

At the run's end at most the margin is left unread (32 to 48 of 2,048 rows in
tests/cluster/test_visitation.py, where 192 were); each earlier `fit` call's end
(the remainder of `train.log_every`, a resumed chief) costs what every
worker holds, and the run then waits `OVERFLOW_DELAY_SECONDS` once at its
end for the overflow.  Measured in docs/results.md.  Grouped batches
(`pfd_tf.cluster.grouped_service`) read padding instead of a margin and go on
until every group is trained: exact, but for a lost task.

A lost worker takes its tf.data worker with it: the rest of the block it
was reading is lost, and the dispatcher hands the remaining blocks to the
others.  Their clients keep asking the dead tf.data worker for the task it
had, with a backoff growing to seconds: with `MAX_OUTSTANDING_REQUESTS` 2
one request waits on it while the other reads on (with 1, the others'
reads crawled for ~100 s: tests/cluster/test_cluster_faults.py).  The lost rows
are made up from the overflow.  A restarted chief starts a new dispatcher
and job, from the blocks its checkpoint had not consumed.
"""
from __future__ import annotations

import uuid

from pfd_tf._keras import tf
from pfd_tf.data import stream

JOB_GC_SECONDS = 10
# A tf.data worker that has not reported for this long is dropped, its blocks handed to the others:
# with the defaults (heartbeats every 30 s) a killed worker held up the others' reads for minutes
# (tests/cluster/test_cluster_faults.py: 133 s instead of 24), and a relaunched cluster's dispatcher, restored
# from its journal, kept the lost cluster's workers.
HEARTBEAT_SECONDS = 1
WORKER_TIMEOUT_SECONDS = 5
MAX_OUTSTANDING_REQUESTS = 2  # a training worker's requests in flight: one may wait on a lost tf.data worker
ELEMENTS_PER_BATCH = 8  # rows travel in elements of an eighth of a batch: little is held read ahead
# What a training worker holds read ahead, at most: its requests in flight and the elements of a batch it
# has begun (ELEMENTS_PER_BATCH - 1 at most).  3 of those were the most counted on an idle machine; a CI run
# with two test processes saw 4 (48 rows of 2,048 unread, tests/cluster/test_visitation.py), so the bound is argued,
# not measured.
HELD_ELEMENTS = MAX_OUTSTANDING_REQUESTS + ELEMENTS_PER_BATCH - 1
TAIL_CHUNK_BATCHES = 2  # the run's last blocks are read in chunks of this many batches
OVERFLOW_DELAY_SECONDS = 5  # longer than the run's last chunks take to be read elsewhere
# No read-ahead on the training workers beyond the service client's: by default their MultiDeviceIterator
# holds a batch on the host and one on the device, rows a run's end leaves untrained.
INPUT_OPTIONS = tf.distribute.InputOptions(experimental_per_replica_buffer_size=0)


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
    the first blocks: tests/cluster/test_visitation.py.)  A job no one reads is
    dropped after `JOB_GC_SECONDS`, a silent tf.data worker after `WORKER_TIMEOUT_SECONDS`.
    """
    from pfd_tf.cluster.spec import require_free

    address = shifted(chief_address, offset)
    require_free(address, "the chief's tf.data dispatcher (cluster.data_service_port_offset)")
    config = tf.data.experimental.service.DispatcherConfig(
        port=port_of(address),
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


def element_rows(batch_size: int) -> int:
    """Rows per element a tf.data worker sends at a run's end (a training worker's batch is several)."""
    return max(1, -(-batch_size // ELEMENTS_PER_BATCH))


def training_workers() -> int:
    """Training workers in this cluster (TF_CONFIG); 2 without one (the in-process test clusters)."""
    from pfd_tf.cluster.spec import current_task

    task = current_task()
    return len(task.cluster["worker"]) if task is not None else 2


def read_ahead_rows(batch_size: int, workers: int | None = None) -> int:
    """The margin after a run's rows: what the other training workers can hold read ahead when it ends.

    Each holds MAX_OUTSTANDING_REQUESTS elements in its tf.data service
    client and those it has pulled towards a batch it never completes: fewer
    than ELEMENTS_PER_BATCH (3 at the most on an idle machine, counted with
    TF_CPP_VMODULE=data_service_client=1, `Returning the next element`,
    against the steps trained; 4 on a loaded one).  No more: the margin is
    read alongside the run's last rows, and each of its rows read is one of
    theirs left unread.
    """
    workers = training_workers() if workers is None else workers
    return max(1, workers - 1) * HELD_ELEMENTS * element_rows(batch_size)


def cluster_plan(rows_per_file, seed: int, start_row: int, end_row: int, batch_size: int,
                 fit_ends=(), padding_batches: int = 0) -> stream.ClusterPlan:
    """The blocks of a cluster run (`stream.cluster_blocks`): its last ones in chunks, then the margin.

    One block more than there are workers is cut into chunks of
    `TAIL_CHUNK_BATCHES` batches: when the run's blocks run out, each
    tf.data worker is at most a chunk from the end of its own, which the
    overflow's delay leaves ample time to read.  Those, and the blocks
    around each row of `fit_ends` (where an earlier `fit` call ends: as many
    each side as there are workers), are sent in small elements.
    `padding_batches`: instead of the margin, one block more than there are
    workers of that many batches of empty elements each (the grouped
    stream's drain, `pfd_tf.cluster.grouped_service`).
    """
    workers = training_workers()
    margin = 0 if padding_batches else read_ahead_rows(batch_size, workers)
    return stream.cluster_blocks(rows_per_file, seed, start_row, end_row, margin,
                                 tail_blocks=workers + 1, chunk_rows=TAIL_CHUNK_BATCHES * batch_size,
                                 fit_ends=fit_ends, near=workers, padding_blocks=workers + 1,
                                 padding_rows=padding_batches * batch_size)


def cluster_batches(files, read, seed: int, plan: stream.ClusterPlan, shuffle_buffer: int,
                    batch_size: int) -> tf.data.Dataset:
    """The raw-record elements the tf.data workers send (`stream.cluster_batches`), for `read()` to batch."""
    return stream.cluster_batches(files, read, seed, plan, shuffle_buffer, batch_size, OVERFLOW_DELAY_SECONDS,
                                  fine_element_rows=element_rows(batch_size))


class ServiceDataset:
    """A dataset registered with the dispatcher once, on the chief; each worker reads it by id.

    Registering inside the dataset function would make each worker serialize
    a dataset whose lookup tables (the FeatureEncoder's) live on the chief;
    registering here, where they are, lets the tf.data workers rebuild them.
    Call `read()` in the dataset function: one shared job, dynamic sharding,
    the elements put together into batches of `batch_size`.  The job is this
    object's own (a name with a random part): `fit` calls of one chief share
    it and read on, a restarted chief starts a new one.
    """

    def __init__(self, dataset: tf.data.Dataset, dispatcher_address: str, batch_size: int):
        self.job_name = f"pfd_train_{uuid.uuid4().hex[:12]}"
        self.service = f"grpc://{dispatcher_address}"
        self.batch_size = batch_size
        self.element_spec = dataset.element_spec
        self.dataset_id = tf.data.experimental.service.register_dataset(self.service, dataset)

    def elements(self) -> tf.data.Dataset:
        """The elements as the tf.data workers send them, with no read-ahead of this worker's own."""
        elements = tf.data.experimental.service.from_dataset_id(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=self.service,
            dataset_id=self.dataset_id,
            element_spec=self.element_spec,
            job_name=self.job_name,
            max_outstanding_requests=MAX_OUTSTANDING_REQUESTS,
        )
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False  # no read-ahead here either
        return elements.with_options(options)

    def read(self) -> tf.data.Dataset:
        return self.elements().rebatch(self.batch_size, drop_remainder=True)
