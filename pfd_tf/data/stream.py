"""The training stream: epochs of every training row, in an order fixed by the seed, from any step.

Why a position.  A run calls `fit` more than once (the checkpoint cadence
leaves a remainder epoch; a resumed run starts again), and a stream rebuilt
from its seeds alone replays its first batches each time.  So the stream is a
pure function of the files and the seed, and it starts at a row position:

- epoch e reads the files in an order shuffled by (seed, e), interleaved row
  by row a few files at a time, its rows shuffled within windows of
  `data.shuffle_buffer` rows by stateless seeds drawn from (seed, e);
- epochs follow one another: each row once per epoch, batches cross epoch
  boundaries, nothing is dropped;
- the stream of a run at step s starts at row s * batch_size: whole epochs
  are skipped without reading them, the rest of the current epoch is skipped
  as raw records (read, never parsed).

On one machine that makes consecutive `fit` calls and a restarted run
continue exactly where the last step left off (`local_records`; rows held in
memory with `data.cache`, `in_memory_batches`, are permuted whole each epoch).

On a cluster the rows reach the workers through the tf.data service with
dynamic sharding (`pfd_tf.data.service`), whose splits must come from the
first dataset of the pipeline: `cluster_blocks` lists the run's blocks (one
file of one epoch, in the same epoch orders), `cluster_batches` reads them
by position.  The dispatcher hands each block to one tf.data worker, once;
a restarted chief lists the blocks again from the first one its checkpoint
has not consumed.  Which rows a cluster run trains is then fixed up to what
its workers hold read ahead when it ends (`cluster_blocks`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from tensorflow.python.data.experimental.ops import testing  # SleepDataset: holds the overflow back

from pfd_tf._keras import tf

MAX_CYCLE = 4  # files read at once, row by row: rows of several files mix in every batch
_EPOCH_SEED_STRIDE = 1_000_003  # a row shuffle seed per (seed, epoch)
_CACHE_SEED = 7_919  # the in-memory rows' permutations: a stream of their own


def epoch_order(num_files: int, seed: int, epoch) -> tf.Tensor:
    """The order in which epoch `epoch` reads the files: one op, in the graph and eagerly alike."""
    seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(num_files, dtype=tf.int64), seed=seeds)


def _row_seed(seed: int, epoch):
    return seed * _EPOCH_SEED_STRIDE + tf.cast(epoch, tf.int64)


def window_shuffle(rows: tf.data.Dataset, window: int, seed) -> tf.data.Dataset:
    """Shuffles `rows` within consecutive windows of `window` rows, each by its own stateless seed.

    Stateless (a pure function of `seed`, a tensor or an int, and the window's
    index), so the order is the same whether the stream is built in a
    tf.function, on a tf.data worker or eagerly, whatever the global seed.
    """
    seed = tf.cast(seed, tf.int64)

    def shuffle(index, batch):
        return tf.random.experimental.stateless_shuffle(batch, seed=tf.stack([seed, index]))

    return rows.batch(window).enumerate().map(shuffle).unbatch()


def _cycle(files: Sequence[str]) -> int:
    return max(1, min(MAX_CYCLE, len(files)))


def local_records(
    files: Sequence[str],
    read: Callable[[tf.Tensor], tf.data.Dataset],
    seed: int,
    start_row: int,
    rows_per_epoch: int | Callable[[], int],
    shuffle_buffer: int,
) -> tf.data.Dataset:
    """Raw records of the training stream from row `start_row` on, forever.

    `rows_per_epoch` is the number of rows in `files`, or a function that
    counts them, called only when the stream does not start at row 0
    (counting the rows costs a pass over the files).  No row at all is a
    ValueError: the stream would read empty epochs forever.
    """
    first_epoch, offset = 0, 0
    rows = rows_per_epoch if isinstance(rows_per_epoch, int) else None
    if start_row and rows is None:
        rows = rows_per_epoch()
    if rows is not None and rows <= 0:
        raise ValueError("no training rows")
    if start_row:
        first_epoch, offset = divmod(start_row, rows)
    paths = tf.constant(list(files))
    cycle = _cycle(files)

    def epoch_rows(epoch):
        rows = tf.data.Dataset.from_tensor_slices(tf.gather(paths, epoch_order(len(files), seed, epoch)))
        rows = rows.interleave(read, cycle_length=cycle, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return window_shuffle(rows, shuffle_buffer, _row_seed(seed, epoch))

    stream = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_rows)
    return stream.skip(offset) if offset else stream


def in_memory_batches(table: dict, labels: tf.Tensor, seed: int, start_row: int, batch_size: int) -> tf.data.Dataset:
    """Batches of rows held in memory (`data.cache`), each epoch a permutation of all of them.

    `table` maps feature name to its encoded ids for every training row
    (`[rows]` or `[rows, max_len]`), `labels` is `[rows]`.  Only row indices
    stream (cheap scalars); each batch is gathered at once, so serving a
    cached batch costs a few gathers, not a trip per row and feature.
    """
    rows = int(labels.shape[0])
    first_epoch, offset = divmod(start_row, rows)

    def epoch_rows(epoch):
        return tf.data.Dataset.from_tensor_slices(epoch_order(rows, seed + _CACHE_SEED, epoch))

    index = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_rows)
    index = index.skip(offset).batch(batch_size, drop_remainder=True)
    return index.map(lambda i: ({name: tf.gather(ids, i) for name, ids in table.items()}, tf.gather(labels, i)),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@dataclasses.dataclass(frozen=True)
class ClusterPlan:
    """The blocks a cluster run's tf.data service hands out, in order: (file index, epoch, rows) each.

    `run`: the run's own blocks, from the one `start_row` falls in to the
    one `end_row - 1` does, then the margin (the next block's first rows;
    `rows` -1: the whole block).  `overflow`: the epoch after, cycled for
    ever after those, each block held back (`cluster_batches`): read only
    when the run's rows are gone, e.g. with a lost worker's.
    """

    run: tuple[tuple[int, int, int], ...]
    overflow: tuple[tuple[int, int, int], ...]


def cluster_blocks(
    rows_per_file: Sequence[int], seed: int, start_row: int, end_row: int, margin_rows: int = 0
) -> ClusterPlan:
    """The blocks a cluster run reads from `start_row` to `end_row` (a ClusterPlan).

    Blocks whose rows all lie before `start_row` are left out; the block in
    which `start_row` falls is read again whole (a restarted chief cannot
    know which of its rows the lost steps had trained).  What the training
    workers hold read ahead when the run ends is not trained: with only the
    run's rows and `margin_rows` more ready to read (at least what they can
    hold), those are the run's last rows lost; every other row of the run
    is trained (tests/test_visitation.py).
    """
    per_epoch = sum(rows_per_file)
    if per_epoch <= 0:
        raise ValueError("no training rows")
    run = []
    epoch, position = start_row // per_epoch, start_row // per_epoch * per_epoch
    while True:
        order = epoch_order(len(rows_per_file), seed, epoch).numpy().tolist()
        for index in order:
            first, position = position, position + rows_per_file[index]
            if position <= start_row:
                continue
            if first >= end_row:
                if margin_rows > 0:
                    run.append((index, epoch, margin_rows))
                # The overflow: the epoch after the margin's, or without a margin the one the run stopped in.
                later = epoch + 1 if margin_rows > 0 else epoch
                after = epoch_order(len(rows_per_file), seed, later).numpy().tolist()
                return ClusterPlan(tuple(run), tuple((i, later, -1) for i in after))
            run.append((index, epoch, -1))
        epoch += 1


def cluster_batches(
    files: Sequence[str],
    read: Callable[[tf.Tensor], tf.data.Dataset],
    seed: int,
    plan: ClusterPlan,
    shuffle_buffer: int,
    element_rows: int,
    overflow_delay_seconds: float,
) -> tf.data.Dataset:
    """Raw-record batches of `element_rows` rows for the tf.data service; its dynamic splits are the blocks.

    The splits are the positions 0, 1, 2, ... of `plan.run` followed by
    `plan.overflow` for ever.  Each tf.data worker reads the blocks the
    dispatcher hands it one at a time (reading several at once puts more
    blocks in flight; one epoch lends the next what is in flight at its
    end), each shuffled within windows by seeds drawn from its (seed,
    epoch, file), in batches of `element_rows` (a block's last one
    shorter): the training workers put their batches together from them
    (`pfd_tf.data.service`), so that what a worker holds read ahead is a
    few of these, not a few whole batches.  A tf.data worker's first
    overflow block starts after `overflow_delay_seconds`: the run's rows
    still being read elsewhere are read first.
    """
    blocks = plan.run + plan.overflow
    paths = tf.constant([files[i] for i, _, _ in blocks])
    block_seeds = tf.constant([_EPOCH_SEED_STRIDE * (seed * _EPOCH_SEED_STRIDE + e) + i for i, e, _ in blocks],
                              tf.int64)
    limits = tf.constant([rows for _, _, rows in blocks], tf.int64)
    in_run, in_overflow = len(plan.run), len(plan.overflow)
    delay = tf.constant(int(overflow_delay_seconds * 1e6), tf.int64)

    def block(position):
        overflow = position >= in_run
        j = tf.where(overflow, in_run + (position - in_run) % in_overflow, position)
        return paths[j], block_seeds[j], limits[j], overflow

    def hold_first_overflow(held, entry):  # per tf.data worker: its first overflow block waits, once
        path, block_seed, limit, overflow = entry
        wait = tf.logical_and(overflow, tf.logical_not(held))
        return tf.logical_or(held, overflow), (path, block_seed, limit, tf.where(wait, delay, tf.constant(0, tf.int64)))

    def block_rows(path, block_seed, limit, wait_microseconds):
        rows = window_shuffle(read(path), shuffle_buffer, block_seed).take(limit)
        held_back = tf.data.Dataset.range(1).apply(testing.sleep(wait_microseconds)).take(1)  # sleeps once
        return held_back.flat_map(lambda _: rows).batch(element_rows)

    positions = tf.data.Dataset.range(np.iinfo(np.int64).max)  # the dispatcher's splits: one position each
    # flat_map, not a parallel interleave: that asks for the next splits ahead, and a tf.data worker holding
    # whole blocks ahead when the run's blocks run out leaves them unread while the others read the overflow.
    return positions.map(block).scan(tf.constant(False), hold_first_overflow).flat_map(block_rows)
