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
first dataset of the pipeline: `cluster_records` lists the run's blocks (one
file of one epoch, in the same epoch orders) as that dataset.  The dispatcher
hands each block to one tf.data worker, once; a restarted chief lists the
blocks again from the first one its checkpoint has not consumed.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

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


def cluster_blocks(
    rows_per_file: Sequence[int], seed: int, start_row: int, end_row: int
) -> tuple[list[int], list[int]]:
    """(file index, epoch) of every block a cluster run reads from `start_row` to `end_row`.

    Blocks whose rows all lie before `start_row` are left out; the block in
    which `start_row` falls is read again whole (a restarted chief cannot
    know which of its rows the lost steps had trained).  One more epoch
    follows the last needed one, for the batches the workers read ahead.
    """
    per_epoch = sum(rows_per_file)
    if per_epoch <= 0:
        raise ValueError("no training rows")
    first_epoch, offset = divmod(start_row, per_epoch)
    last_epoch = max(first_epoch, math.ceil(end_row / per_epoch) - 1) + 1
    files, epochs = [], []
    for epoch in range(first_epoch, last_epoch + 1):
        done = 0
        for index in epoch_order(len(rows_per_file), seed, epoch).numpy().tolist():
            done += rows_per_file[index]
            if epoch == first_epoch and done <= offset:
                continue
            files.append(index)
            epochs.append(epoch)
    return files, epochs


def cluster_records(
    files: Sequence[str],
    read: Callable[[tf.Tensor], tf.data.Dataset],
    seed: int,
    blocks: tuple[list[int], list[int]],
    shuffle_buffer: int,
) -> tf.data.Dataset:
    """Raw records for the tf.data service: its dynamic splits are the blocks of `cluster_blocks`.

    Each tf.data worker reads the blocks the dispatcher hands it one at a
    time (reading several at once puts more blocks in flight, and at an epoch
    boundary the rows of in-flight blocks are what one epoch lends the next:
    with 4 at once on 2 workers a quarter of a 16-file epoch was),
    each shuffled within windows by seeds drawn from its (seed, epoch, file);
    the training workers' batches interleave the tf.data workers' outputs.
    After the listed blocks the list repeats, so that `fit` never runs dry.
    """
    indices, epochs = blocks
    paths = tf.constant([files[i] for i in indices])
    block_seeds = tf.constant([_EPOCH_SEED_STRIDE * (seed * _EPOCH_SEED_STRIDE + e) + i
                               for i, e in zip(indices, epochs)], tf.int64)

    def block_rows(path, block_seed):
        return window_shuffle(read(path), shuffle_buffer, block_seed)

    source = tf.data.Dataset.from_tensor_slices((paths, block_seeds))
    rows = source.interleave(block_rows, cycle_length=1,
                             num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return rows.repeat()
