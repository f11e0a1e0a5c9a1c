"""Request-grouped batches on a cluster: the tf.data service hands out whole groups, once per epoch each.

The cluster's plan (`pfd_tf.data.stream.cluster_blocks`, through
`pfd_tf.cluster.data_service.cluster_plan`) counts groups here, not rows: a
block is a file's groups in an epoch (shuffled as on one machine,
`pfd_tf.data.grouped.shuffle_groups`, by the block's seed), the run is
`train.steps * groups_per_batch` groups from `start_step * groups_per_batch`
on, and the margin and the tail's chunks are in groups too.  A tf.data
worker sends one group per element, parsed (`(ids, labels)` of its rows);
a training worker puts `groups_per_batch` elements together into a batch
(`whole_groups`), so no group is ever split across batches, and what it
holds read ahead when a run ends is its requests in flight and the groups of
a batch it has begun: fewer than a batch, which the margin
(`read_ahead_rows` of groups_per_batch, in groups) covers.  Each element
costs a request: groups of a few rows trade throughput for the grouping.
"""
from __future__ import annotations

from typing import Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.cluster import data_service as service
from pfd_tf.data import grouped, stream
from pfd_tf.names import GROUP


def block_elements(files: Sequence[str], read: Callable, groups: grouped.FileGroups, window: int) -> Callable:
    """`stream.cluster_batches`' `block_elements`: a block's groups, one raw-record element each."""
    groups_of = grouped.groups_of_files(files, read, groups)

    def elements(file_index, block_seed, skip, take, per_element):
        del per_element  # one group an element
        return grouped.shuffle_groups(groups_of(file_index), window, block_seed).skip(skip).take(take)

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
                                [step * per_batch for step in fit_ends])
    elements = stream.cluster_batches(files, read, seed, plan, window, 1, service.OVERFLOW_DELAY_SECONDS,
                                      block_elements=block_elements(files, read, groups, window))
    parsed = elements.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return GroupedServiceDataset(parsed, data_service, per_batch)
