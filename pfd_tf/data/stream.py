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
dynamic sharding (`pfd_tf.cluster.data_service`), whose splits must come from the
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


def window_shuffle(rows: tf.data.Dataset, window: int, seed, first_window=0) -> tf.data.Dataset:
    """Shuffles `rows` within consecutive windows of `window` rows, each by its own stateless seed.

    Stateless (a pure function of `seed`, a tensor or an int, and the window's
    index), so the order is the same whether the stream is built in a
    tf.function, on a tf.data worker or eagerly, whatever the global seed.
    `first_window`: the index of the window `rows` starts at (the rows of
    those before it skipped unshuffled), so that any window is shuffled alike.
    """
    seed = tf.cast(seed, tf.int64)

    def shuffle(index, batch):
        return tf.random.experimental.stateless_shuffle(batch, seed=tf.stack([seed, index]))

    return rows.batch(window).enumerate(start=tf.cast(first_window, tf.int64)).map(shuffle).unbatch()


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


def in_memory_batches(table: dict, labels: dict, seed: int, start_row: int, batch_size: int) -> tf.data.Dataset:
    """Batches of rows held in memory (`data.cache`), each epoch a permutation of all of them.

    `table` maps feature name to its encoded ids for every training row
    (`[rows]` or `[rows, max_len]`), `labels` task name to its labels (`[rows]`).  Only row indices
    stream (cheap scalars); each batch is gathered at once, so serving a
    cached batch costs a few gathers, not a trip per row and feature.
    """
    rows = int(next(iter(labels.values())).shape[0])
    first_epoch, offset = divmod(start_row, rows)

    def epoch_rows(epoch):
        return tf.data.Dataset.from_tensor_slices(epoch_order(rows, seed + _CACHE_SEED, epoch))

    index = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_rows)
    index = index.skip(offset).batch(batch_size, drop_remainder=True)
    return index.map(lambda i: ({name: tf.gather(ids, i) for name, ids in table.items()},
                                {name: tf.gather(values, i) for name, values in labels.items()}),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@dataclasses.dataclass(frozen=True)
class ClusterPlan:
    """The blocks a cluster run's tf.data service hands out, in order: (file, epoch, skip, take, fine) each.

    A block is `take` rows (-1: all) of file `file`'s rows in epoch
    `epoch`'s order, after the first `skip`; `fine` ones are sent in small
    elements (`cluster_batches`).  `run`: the run's own blocks, from the one
    `start_row` falls in to the one `end_row - 1` does (up to that row), the
    last few cut into chunks, then the margin (the next block's first rows).
    `overflow`: the epoch after, cycled for ever after those; read only
    when the run's rows are gone (a lost worker's), and held back a while.
    """

    run: tuple[tuple[int, int, int, int, bool], ...]
    overflow: tuple[tuple[int, int, int, int, bool], ...]


PADDING = -1  # the file index of a padding block: `take` empty elements (`cluster_blocks`' padding_blocks)


def cluster_blocks(
    rows_per_file: Sequence[int], seed: int, start_row: int, end_row: int, margin_rows: int = 0,
    tail_blocks: int = 0, chunk_rows: int = 0, fit_ends: Sequence[int] = (), near: int = 0,
    padding_blocks: int = 0, padding_rows: int = 0,
) -> ClusterPlan:
    """The blocks a cluster run reads from `start_row` to `end_row` (a ClusterPlan).

    Blocks whose rows all lie before `start_row` are left out; the block in
    which `start_row` falls is read again whole (a restarted chief cannot
    know which of its rows the lost steps had trained).

    Which rows the run trains: all of them but what the training workers
    hold read ahead when a `fit` call ends, at `end_row` and at each row of
    `fit_ends`, provided that

    - the blocks read then are fine (`near` blocks each side of the one a
      fit call ends in; the last `tail_blocks`), so that that is little;
    - at the run's end every tf.data worker is near the end of its own
      blocks (the last `tail_blocks` are cut into chunks of `chunk_rows`)
      and there are `margin_rows` more to read (at least what the workers
      hold) before the overflow (tests/cluster/test_visitation.py).

    `padding_blocks` blocks of `padding_rows` empty elements each (file
    `PADDING`) come after the margin, before the overflow: what a training
    worker reads once the run's rows are gone while another still holds
    some, so that the run can go on until those are trained too
    (`pfd_tf.cluster.grouped_service`); one such block per tf.data worker
    and one more keep every tf.data worker off the overflow meanwhile.
    """
    per_epoch = sum(rows_per_file)
    if per_epoch <= 0:
        raise ValueError("no training rows")
    run = []  # (file, epoch, the stream row it starts at)
    epoch, position = start_row // per_epoch, start_row // per_epoch * per_epoch
    while True:
        for index in epoch_order(len(rows_per_file), seed, epoch).numpy().tolist():
            first, position = position, position + rows_per_file[index]
            if position <= start_row:
                continue
            if first < end_row:
                run.append((index, epoch, first))
                continue
            fine = {k for k in range(len(run) - tail_blocks, len(run))}
            for row in fit_ends:
                at = [k for k, (i, _, start) in enumerate(run) if start <= row < start + rows_per_file[i]]
                fine.update(k for a in at for k in range(a - near, a + near + 1))
            whole = [(i, e, 0, -1, k in fine) for k, (i, e, _) in enumerate(run[:max(0, len(run) - tail_blocks)])]
            chunked = []
            for i, e, start in run[len(whole):]:
                rows = min(rows_per_file[i], end_row - start)  # the last block: only up to the run's end
                step = chunk_rows or rows
                chunked += [(i, e, skip, min(step, rows - skip), True) for skip in range(0, rows, step)]
            margin = [(index, epoch, 0, margin_rows, True)] if margin_rows > 0 else []
            margin += [(PADDING, epoch, 0, padding_rows, True)] * (padding_blocks if padding_rows > 0 else 0)
            after = epoch_order(len(rows_per_file), seed, epoch + 1).numpy().tolist()
            return ClusterPlan(tuple(whole + chunked + margin), tuple((i, epoch + 1, 0, -1, True) for i in after))
        epoch += 1


def cluster_batches(
    files: Sequence[str],
    read: Callable[[tf.Tensor], tf.data.Dataset],
    seed: int,
    plan: ClusterPlan,
    shuffle_buffer: int,
    element_rows: int,
    overflow_delay_seconds: float,
    fine_element_rows: int | None = None,
    block_elements: Callable | None = None,
    padding_delay_seconds: float = 0,
) -> tf.data.Dataset:
    """Raw-record batches of `element_rows` rows for the tf.data service; its dynamic splits are the blocks.

    The splits are the positions 0, 1, 2, ... of `plan.run` followed by
    `plan.overflow` for ever.  Each tf.data worker reads the blocks the
    dispatcher hands it one at a time (reading several at once puts more
    blocks in flight; one epoch lends the next what is in flight at its
    end), each shuffled within windows by seeds drawn from its (seed,
    epoch, file), in batches of `element_rows` (a block's last one
    shorter), fine blocks in batches of `fine_element_rows`: the training
    workers put their batches together from them (`pfd_tf.cluster.data_service`),
    so that what a worker holds read ahead when a `fit` call ends is a few
    small ones.  A tf.data worker's first overflow block starts after
    `overflow_delay_seconds`: the run's rows still being read elsewhere are
    read first; likewise its first padding block, after `padding_delay_seconds`.  `block_elements(file_index, block_seed, skip, take, per_element)`, if given, makes a
    block's elements instead (`pfd_tf.data.grouped`: whole groups, the plan counting groups, not rows).
    """
    blocks = plan.run + plan.overflow
    if block_elements is None and any(i == PADDING for i, *_ in blocks):
        raise ValueError("padding blocks need block_elements: the row stream has no empty element")
    paths = tf.constant([files[i] if i != PADDING else "" for i, *_ in blocks])
    indices = tf.constant([i for i, *_ in blocks], tf.int64)
    block_seeds = tf.constant([_EPOCH_SEED_STRIDE * (seed * _EPOCH_SEED_STRIDE + e) + i for i, e, *_ in blocks],
                              tf.int64)
    skips = tf.constant([skip for _, _, skip, _, _ in blocks], tf.int64)
    takes = tf.constant([take for _, _, _, take, _ in blocks], tf.int64)
    per_element = tf.constant([fine_element_rows or element_rows if fine else element_rows
                               for *_, fine in blocks], tf.int64)
    in_run, in_overflow = len(plan.run), len(plan.overflow)
    delays = tf.constant([int(padding_delay_seconds * 1e6), int(overflow_delay_seconds * 1e6)], tf.int64)

    def block(position):
        overflow = position >= in_run
        j = tf.where(overflow, in_run + (position - in_run) % in_overflow, position)
        kind = tf.stack([tf.logical_and(tf.logical_not(overflow), tf.equal(indices[j], PADDING)), overflow])
        return (paths[j] if block_elements is None else indices[j]), block_seeds[j], skips[j], takes[j], \
            per_element[j], kind

    def hold_first(held, entry):  # per tf.data worker: its first padding and its first overflow block wait, once
        *where, kind = entry
        wait = tf.logical_and(kind, tf.logical_not(held))
        return tf.logical_or(held, kind), (*where, tf.reduce_sum(tf.where(wait, delays, tf.zeros_like(delays))))

    def block_rows(path, block_seed, skip, take, per_element, wait_microseconds):
        held_back = tf.data.Dataset.range(1).apply(testing.sleep(wait_microseconds)).take(1)  # sleeps once
        if block_elements is not None:
            return held_back.flat_map(lambda _: block_elements(path, block_seed, skip, take, per_element))
        windows = skip // shuffle_buffer  # whole windows before the chunk are skipped unshuffled
        rows = window_shuffle(read(path).skip(windows * shuffle_buffer), shuffle_buffer, block_seed, windows)
        rows = rows.skip(skip - windows * shuffle_buffer).take(take)
        return held_back.flat_map(lambda _: rows).batch(per_element)

    positions = tf.data.Dataset.range(np.iinfo(np.int64).max)  # the dispatcher's splits: one position each
    # flat_map, not a parallel interleave: that asks for the next splits ahead, and a tf.data worker holding
    # whole blocks ahead when the run's blocks run out leaves them unread while the others read the overflow.
    return positions.map(block).scan(tf.constant([False, False]), hold_first).flat_map(block_rows)
