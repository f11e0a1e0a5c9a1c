"""Request-grouped batches on a cluster: the tf.data service hands out whole groups, each trained once per epoch.

The cluster's plan (`pfd_tf.data.stream.cluster_blocks`, through
`pfd_tf.cluster.data_service.cluster_plan`) counts groups here, not rows: a
block is a file's groups in an epoch (shuffled as on one machine,
`pfd_tf.data.grouped.shuffle_groups`, by the block's seed), the run is
`train.steps * groups_per_batch` groups from `start_step * groups_per_batch`
on, and the tail's chunks are in groups too.  A tf.data worker sends one
group per element, parsed (`(ids, labels)` of its rows); a training worker
puts `groups_per_batch` elements together into a batch (`whole_groups`), so
no group is ever split across batches.

Why the run's end drains instead of reading a margin.  What a training
worker holds read ahead when the run ends (its requests in flight, the
groups of a batch it has begun) is never trained; the row stream makes up
that many rows from a margin, so which rows it trains is off by up to the
margin each way (tests/cluster/test_visitation.py), and with groups of a few
rows an element is a group: 14 to 75 of 256 rows were off.  Here the run's
groups are followed by padding (`PADDING_BATCHES` batches of empty groups
per block, `stream.PADDING`, before the overflow), a batch of only empty
groups is no step (`Distiller.train_step`), and the run goes on past its
planned steps until `Distiller.trained_groups` counts every group of the run
(`pfd_tf.cluster.drain.DrainHeldGroups`): a worker that holds some of them
is handed more steps, trains them, then reads padding.  Every row is then
trained once per epoch, no row of the next epoch is; a batch at the run's
end can hold fewer groups (some empty), so the run may take a few steps
more than `train.steps`.  Where that cannot hold: a lost worker takes the
groups it held and the rest of the block its tf.data worker was reading; the
run then reads the padding and the overflow (the next epoch's groups) until
the count is made up.  A restarted chief reads the block its checkpoint fell
in again whole.  Each element costs a request: groups of a few rows trade
throughput for the grouping.
"""
from __future__ import annotations

from typing import Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.cluster import data_service as service
from pfd_tf.data import grouped, stream
from pfd_tf.names import GROUP


PADDING_BATCHES = 256  # batches of empty groups per padding block: the drain's reads before the overflow
# A tf.data worker's first padding block waits this long: the run's last groups, still being read by another, reach
# the training workers first, rather than mixed with padding into batches of fewer groups (each one more step).
PADDING_DELAY_SECONDS = 1


def block_elements(files: Sequence[str], read: Callable, groups: grouped.FileGroups, window: int) -> Callable:
    """`stream.cluster_batches`' `block_elements`: a block's groups, one raw-record element each; a padding
    block (`stream.PADDING`), `take` empty groups."""
    groups_of = grouped.groups_of_files(files, read, groups)

    def elements(file_index, block_seed, skip, take, per_element):
        del per_element  # one group an element
        padding = tf.equal(file_index, stream.PADDING)
        real = grouped.shuffle_groups(groups_of(tf.maximum(file_index, 0)), window, block_seed).skip(skip)
        no_rows = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.string), tf.constant([0], tf.int64))
        empty = tf.data.Dataset.from_tensor_slices(no_rows).repeat(tf.where(padding, take, 0))  # as groups_of's
        return real.take(tf.where(padding, tf.constant(0, tf.int64), take)).concatenate(empty)

    return elements


def whole_groups(elements: tf.data.Dataset, per_batch: int) -> tf.data.Dataset:
    """One group an element -> batches of `per_batch` whole groups, flat, each row's group under labels[GROUP]."""
    def flatten(ids, labels):
        any_label = next(iter(labels.values()))
        group = tf.cast(any_label.value_rowids(), tf.int32)
        return ({name: value.values for name, value in ids.items()},
                {**{name: value.values for name, value in labels.items()}, GROUP: group})

    return elements.ragged_batch(per_batch, drop_remainder=True).map(flatten)


class GroupedServiceDataset(service.ServiceDataset):
    """`ServiceDataset` whose elements are whole groups, put together `per_batch` at a time."""

    def __init__(self, dataset: tf.data.Dataset, dispatcher_address: str, per_batch: int):
        super().__init__(dataset, dispatcher_address, per_batch)
        self.per_batch = per_batch

    def read(self) -> tf.data.Dataset:
        return whole_groups(self.elements(), self.per_batch)


def registered(files: Sequence[str], read: Callable, groups: grouped.FileGroups, per_batch: int,
               to_model_inputs: Callable, seed: int, start_step: int, steps: int, window: int,
               data_service: str, fit_ends: Sequence[int] = ()) -> GroupedServiceDataset:
    """The grouped training stream registered with the dispatcher (`make_dataset_fn`'s cluster hook)."""
    per_file = [len(n) for n in groups.lengths]
    plan = service.cluster_plan(per_file, seed, start_step * per_batch, steps * per_batch, per_batch,
                                [step * per_batch for step in fit_ends], padding_batches=PADDING_BATCHES)
    elements = stream.cluster_batches(files, read, seed, plan, window, 1, service.OVERFLOW_DELAY_SECONDS,
                                      block_elements=block_elements(files, read, groups, window),
                                      padding_delay_seconds=PADDING_DELAY_SECONDS)
    parsed = elements.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return GroupedServiceDataset(parsed, data_service, per_batch)
