"""Request-grouped batches: the rows of a group (a request's candidate list) always in one batch.

Ranking distillation compares a student's scores with a teacher's over the
candidates of one list ("Knowledge Distillation Techniques for
Recommendation Systems", the survey of distillation across recall,
pre-ranking and ranking: the point-, pair- and list-wise objectives), so
each list must reach a step whole.  The row stream of `pfd_tf.data.stream`
shuffles rows within windows, which scatters a list over several batches;
with `data.group_by` (the columns whose values name a group: a request id,
or a user and a day) the unit of the stream is the group instead:

- a group is the rows of one file that share the key (logs partitioned by
  day write a request's rows, or a user's day, to one file); the key's
  columns are read in Python before training (`file_groups`), so a column
  missing from a file's header is a DataError naming the file and column
  before anything is written;
- epoch e reads the files in the order of `stream.epoch_order`, a few files'
  groups interleaved, and shuffles the groups (never their rows apart)
  within windows of `data.shuffle_buffer` groups by stateless seeds;
- a batch is `groups_per_batch` whole groups, flattened to their rows (so
  its row count varies around `train.batch_size`); each row carries its
  group's index within the batch under `labels[GROUP]`
  (`pfd_tf.distill.ranking.to_lists` lays a batch out as `[G, L]` lists by it);
- step s starts at group s * groups_per_batch: a resumed run goes on where
  the last step left off, each group once per epoch;
- `data.cache` keeps the encoded rows in memory and permutes the groups;
- on a cluster the tf.data service hands out whole groups
  (`pfd_tf.cluster.grouped_service`).

A file is read whole to be cut into its groups (`groups_of_files`), so each
file must fit in memory (logs partitioned by day or hour do).

Held-out rows come in file order, `groups_per_batch` groups a batch.
"""
from __future__ import annotations

import csv
import dataclasses
from typing import Callable, Sequence

import numpy as np

from pfd_tf._keras import tf
from pfd_tf.data import stream
from pfd_tf.data.files import DataError, open_text
from pfd_tf.names import GROUP

_GROUP_SEED = 104_729  # the groups' shuffles: a stream of their own


@dataclasses.dataclass(frozen=True)
class FileGroups:
    """The groups of the files, in the files' order: `order[f]` the file's row indices sorted by group (in
    order of each group's first row, rows in file order), `lengths[f]` each group's row count."""

    order: tuple[np.ndarray, ...]
    lengths: tuple[np.ndarray, ...]

    @property
    def groups(self) -> int:
        return int(sum(len(n) for n in self.lengths))

    @property
    def rows(self) -> int:
        return int(sum(n.sum() for n in self.lengths))

    def per_batch(self, batch_size: int) -> int:
        """Groups per batch: whole groups of about `batch_size` rows in all (at least one)."""
        return max(1, round(batch_size * self.groups / max(1, self.rows)))


def file_groups(files: Sequence[str], key: Sequence[str], columns: Sequence[str] = (),
                delimiter: str = ",") -> FileGroups:
    """Reads the `key` columns of each CSV file and groups its rows by their values.

    `columns`: the columns of header-less files (`data.columns`); empty: each
    file's first line is its header.  DataError naming the file and the
    column when a key column is not there.
    """
    orders, lengths = [], []
    for path in files:
        with open_text(path) as f:
            rows = csv.reader(f, delimiter=delimiter)
            header = list(columns) or next(rows, [])
            missing = [c for c in key if c not in header]
            if missing:
                raise DataError(f"{path}: data.group_by names column {missing[0]!r}, which this file does not "
                                f"have (its columns: {', '.join(header)})")
            at = [header.index(c) for c in key]
            first: dict[tuple, int] = {}
            group = np.asarray([first.setdefault(tuple(row[i] for i in at), len(first)) for row in rows],
                               dtype=np.int64)
        orders.append(np.argsort(group, kind="stable"))
        lengths.append(np.bincount(group, minlength=len(first)).astype(np.int64))
    return FileGroups(tuple(orders), tuple(lengths))


def _file_group_tensors(files: Sequence[str], groups: FileGroups):
    """Constant tensors: paths, each file's offset into the concatenated orders and lengths, and those."""
    paths = tf.constant(list(files))
    orders = tf.constant(np.concatenate(groups.order) if groups.order else np.zeros(0, np.int64), tf.int64)
    lengths = tf.constant(np.concatenate(groups.lengths) if groups.lengths else np.zeros(0, np.int64), tf.int64)
    row_at = tf.constant(np.cumsum([0] + [len(o) for o in groups.order]), tf.int64)
    group_at = tf.constant(np.cumsum([0] + [len(n) for n in groups.lengths]), tf.int64)
    return paths, orders, lengths, row_at, group_at


def groups_of_files(files: Sequence[str], read: Callable[[tf.Tensor], tf.data.Dataset], groups: FileGroups
                    ) -> Callable[[tf.Tensor], tf.data.Dataset]:
    """`groups_of(file_index)`: the file's groups, one element each (its raw records, `[rows]`)."""
    paths, orders, lengths, row_at, group_at = _file_group_tensors(files, groups)

    def groups_of(index):
        rows = row_at[index + 1] - row_at[index]
        records = read(paths[index]).batch(tf.maximum(rows, 1)).take(1)

        def split(lines):
            order = orders[row_at[index]:row_at[index + 1]]
            return tf.RaggedTensor.from_row_lengths(tf.gather(lines, order),
                                                    lengths[group_at[index]:group_at[index + 1]])

        return records.map(split).flat_map(tf.data.Dataset.from_tensor_slices)

    return groups_of


def shuffle_groups(groups: tf.data.Dataset, window: int, seed) -> tf.data.Dataset:
    """Shuffles whole groups (elements `[rows]`) within consecutive windows of `window` groups, statelessly
    (as `stream.window_shuffle` does rows)."""
    seed = tf.cast(seed, tf.int64)

    def shuffle(index, batch):
        perm = tf.random.experimental.stateless_shuffle(tf.range(batch.nrows()), seed=tf.stack([seed, index]))
        return tf.gather(batch, perm)

    return groups.ragged_batch(window).enumerate().map(shuffle).unbatch()


def flat_batches(groups: tf.data.Dataset, per_batch: int, drop_remainder: bool) -> tf.data.Dataset:
    """`per_batch` groups a batch, as (records `[rows]`, each row's group index in the batch `[rows]`)."""
    batched = groups.ragged_batch(per_batch, drop_remainder=drop_remainder)
    return batched.map(lambda rt: (rt.values, tf.cast(rt.value_rowids(), tf.int32)))


def training_batches(files: Sequence[str], read: Callable, groups: FileGroups, seed: int, start_step: int,
                     per_batch: int, window: int) -> tf.data.Dataset:
    """The grouped training stream from step `start_step` on, forever: (records, group index) batches."""
    if groups.groups <= 0:
        raise ValueError("no training rows")
    first_epoch, offset = divmod(start_step * per_batch, groups.groups)
    groups_of = groups_of_files(files, read, groups)
    cycle = max(1, min(stream.MAX_CYCLE, len(files)))

    def epoch_groups(epoch):
        order = tf.data.Dataset.from_tensor_slices(stream.epoch_order(len(files), seed, epoch))
        lists = order.interleave(groups_of, cycle_length=cycle, num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True)
        return shuffle_groups(lists, window, (seed + _GROUP_SEED) * 1_000_003 + tf.cast(epoch, tf.int64))

    lists = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_groups)
    return flat_batches(lists.skip(offset) if offset else lists, per_batch, drop_remainder=True)


def in_order_batches(files: Sequence[str], read: Callable, groups: FileGroups, per_batch: int) -> tf.data.Dataset:
    """Held-out rows: each file's groups in order, file after file, `per_batch` groups a batch."""
    lists = tf.data.Dataset.range(len(files)).flat_map(groups_of_files(files, read, groups))
    return flat_batches(lists, per_batch, drop_remainder=False)


def in_memory_batches(table: dict, labels: dict, groups: FileGroups, seed: int, start_step: int,
                      per_batch: int) -> tf.data.Dataset:
    """`stream.in_memory_batches` by groups: rows held in memory in file order, each epoch a permutation of
    the groups, `per_batch` whole groups a batch (`labels[GROUP]`: each row's group in its batch)."""
    offsets = np.cumsum([0] + [len(o) for o in groups.order])
    members = tf.RaggedTensor.from_row_lengths(
        np.concatenate([o + at for o, at in zip(groups.order, offsets)]).astype(np.int64),
        np.concatenate(groups.lengths))
    first_epoch, offset = divmod(start_step * per_batch, groups.groups)

    def epoch_groups(epoch):
        return tf.data.Dataset.from_tensor_slices(stream.epoch_order(groups.groups, seed + _GROUP_SEED, epoch))

    index = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_groups)
    index = index.skip(offset).batch(per_batch, drop_remainder=True)

    def gather(chosen):
        rows = tf.gather(members, chosen)
        i = rows.values
        out = {name: tf.gather(values, i) for name, values in labels.items()}
        out[GROUP] = tf.cast(rows.value_rowids(), tf.int32)
        return {name: tf.gather(ids, i) for name, ids in table.items()}, out

    return index.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def grouped_dataset(files: Sequence[str], read: Callable, groups: FileGroups, per_batch: int,
                    to_model_inputs: Callable, training: bool, seed: int, start_step: int, window: int,
                    cache: bool, in_memory: Callable, memory: dict) -> tf.data.Dataset:
    """The pipeline's batches, `(ids, labels)` with `labels[GROUP]`, by groups (`make_dataset_fn`'s hook).

    `to_model_inputs(records)`: parsed and encoded `(ids, labels)`; `in_memory(batches)` concatenates batches
    into `memory` form (`{"ids": ..., "labels": ...}`), kept in `memory` across fit calls (`data.cache`).
    """
    def with_group(records, group):
        ids, labels = to_model_inputs(records)
        return ids, {**labels, GROUP: group}

    if not training:
        ds = in_order_batches(files, read, groups, per_batch).map(with_group)
    elif cache:
        if not memory:  # rows in file order, file after file: the groups' row indices point into them
            rows = tf.data.Dataset.from_tensor_slices(list(files)).flat_map(read)
            memory.update(in_memory(rows.batch(4096).map(to_model_inputs)))
        ds = in_memory_batches(memory["ids"], memory["labels"], groups, seed, start_step, per_batch)
    else:
        ds = training_batches(files, read, groups, seed, start_step, per_batch, window)
        ds = ds.map(with_group, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
