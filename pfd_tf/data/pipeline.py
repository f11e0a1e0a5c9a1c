"""tf.data input pipelines over CSV and TFRecord files that the config declares.

`make_dataset_fn` returns a `dataset_fn(input_context)`, the form `fit` and
ParameterServerStrategy take.  Training rows come in the order of
`pfd_tf.data.stream` (each row once per epoch, resumable at any step), on a
cluster through the tf.data service (`pfd_tf.cluster.data_service`).  Rows are
parsed a batch at a time (`pfd_tf.data.parse`), then the `FeatureEncoder`
turns raw values into embedding ids; the model only ever sees ids.

Bad input: what can be found before training is found when the dataset_fn
is built, named with its file (`pfd_tf.data.files`, `pfd_tf.data.parse`): a
missing column, a file of the wrong format, a damaged or truncated file,
training files with no row.  A bad row stops TensorFlow with an error that
names no file, so `diagnose` (`pfd_tf.data.checks`) re-reads the files in
Python to name the file and line; the trainer calls it when that happens,
and `check_eval_split` runs the held-out rows through the same checks before
training.  The names other modules import from here are re-exported.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from pfd_tf._keras import tf
from pfd_tf.config import Config
from pfd_tf.cluster import data_service as service
from pfd_tf.cluster import grouped_service
from pfd_tf.data import grouped, stream
from pfd_tf.data.checks import check_eval_split, count_training_rows, diagnose, training_rows_per_file
from pfd_tf.data.files import DataError, count_rows, file_order, layout, reader, require_rows, resolve_files
from pfd_tf.data.files import rows_per_file as _rows_per_file
from pfd_tf.data.parse import PARSE_BATCH, check_tfrecord_columns, csv_header, parser
from pfd_tf.features import FeatureEncoder
from pfd_tf.tasks.targets import target

__all__ = [
    "DataError", "PARSE_BATCH", "check_eval_split", "check_tfrecord_columns", "count_rows", "count_training_rows",
    "csv_header", "diagnose", "eval_steps", "make_dataset_fn", "resolve_files", "training_rows_per_file",
]


# --------------------------------------------------------------------------
# The dataset_fn
# --------------------------------------------------------------------------
def make_dataset_fn(
    config: Config,
    split: str,
    batch_size: int,
    training: bool,
    start_step: int = 0,
    data_service: str | None = None,
    rows_per_file: Sequence[int] | None = None,
    fit_ends: Sequence[int] = (),
) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """Builds `dataset_fn(input_context)` yielding `(ids_by_feature, labels_by_task)` batches.

    `labels_by_task` maps each task's name (`config.task_specs`; `main` for
    the one task of `data.label`) to its labels, `[batch]` float32.

    `split` is "train" or "eval".  Evaluation data is read once, in order.
    Training data is the stream of `pfd_tf.data.stream` from step
    `start_step` on (each row once per epoch, in an order fixed by
    `train.seed`), forever (`fit` bounds it by steps, as
    ParameterServerStrategy requires); with `data_service` (the dispatcher's
    host:port), it is read through the tf.data service (`pfd_tf.cluster.data_service`), so the input context that
    ParameterServerStrategy passes (the same on every worker) is not used.
    File listing and schema checks run here, once, not inside the workers.

    Training counts the rows of every file here (so training files with no
    row, a damaged or truncated file, a file of the wrong format raise
    DataError before any step), unless `rows_per_file` (from
    `training_rows_per_file`, or the `dataset_fn.rows_per_file` of an
    earlier build for the same files) saves counting them again.  `fit_ends`:
    the steps at which a `fit` call reading a cluster's stream ends before
    the run's end (`pfd_tf.cluster.data_service.cluster_plan`).  The dataset_fn carries `files`,
    `rows_per_file` and `rows` (None for evaluation) and `starting_at`.
    """
    files = resolve_files(config, f"{split}_files")
    parse = parser(config, files)
    read = reader(*layout(config))
    tasks = config.task_specs
    seed = config.train.seed
    start_row = start_step * batch_size
    counts = None
    if training:
        counts = list(rows_per_file) if rows_per_file is not None else _rows_per_file(files, *layout(config))
        if len(counts) != len(files):
            raise ValueError(f"rows_per_file: {len(counts)} counts for {len(files)} files")
        require_rows(files, counts, f"{split}_files")
    plan = None
    if training and data_service:
        plan = service.cluster_plan(counts, seed, start_row, config.train.steps * batch_size, batch_size,
                                    [step * batch_size for step in fit_ends])

    groups = grouped.file_groups(files, config.data.group_by, config.data.columns, config.data.csv_delimiter) \
        if config.data.group_by else None
    groups_per_batch = (config.data.groups_per_batch or groups.per_batch(batch_size)) if groups is not None else 0
    encoder = FeatureEncoder(config.features)

    def to_model_inputs(records):
        raw = parse(records)
        return encoder(raw), {task.name: target(task, raw[task.label]) for task in tasks}

    def parse_batches(ds, size, drop_remainder):
        ds = ds.batch(size, drop_remainder=drop_remainder)
        return ds.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def in_file_order():
        return file_order(files, *layout(config))

    memory: dict = {}  # data.cache: the encoded training rows, parsed once for every fit call

    def build(start_row: int) -> tf.data.Dataset:
        if groups is not None:  # data.group_by: whole groups a batch (pfd_tf.data.grouped)
            return grouped.grouped_dataset(files, read, groups, groups_per_batch, to_model_inputs, training, seed,
                                           start_row // batch_size, config.data.shuffle_buffer, config.data.cache,
                                           _in_memory, memory)
        if not training:
            return parse_batches(in_file_order(), batch_size, False).prefetch(tf.data.AUTOTUNE)
        if plan is not None:  # elements of a few rows, which the training workers put together into batches
            records = service.cluster_batches(files, read, seed, plan, config.data.shuffle_buffer, batch_size)
            return records.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if config.data.cache:
            if not memory:
                memory.update(_in_memory(parse_batches(in_file_order(), PARSE_BATCH, False)))
            ds = stream.in_memory_batches(memory["ids"], memory["labels"], seed, start_row, batch_size)
        else:
            records = stream.local_records(files, read, seed, start_row, sum(counts), config.data.shuffle_buffer)
            ds = parse_batches(records, batch_size, True)
        return ds.prefetch(tf.data.AUTOTUNE)

    registered = None
    if plan is not None and groups is not None:  # whole groups through the tf.data service
        registered = grouped_service.registered(
            files, read, groups, groups_per_batch, to_model_inputs, seed, start_step, config.train.steps,
            config.data.shuffle_buffer, data_service, fit_ends)
    elif plan is not None:
        registered = service.ServiceDataset(build(start_row), data_service, batch_size)

    def starting_at(step: int):
        """The same training stream from step `step` on (what the next `fit` call reads)."""

        def dataset_fn(input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
            del input_context  # ParameterServerStrategy gives every worker InputContext(1, 0)
            return registered.read() if registered is not None else build(step * batch_size)

        dataset_fn.files = files  # type: ignore[attr-defined]  (for diagnose and steps)
        dataset_fn.rows_per_file = counts  # type: ignore[attr-defined]
        dataset_fn.rows = sum(counts) if counts is not None else None  # type: ignore[attr-defined]
        dataset_fn.starting_at = starting_at  # type: ignore[attr-defined]
        dataset_fn.groups_per_batch = groups_per_batch  # type: ignore[attr-defined]  (0: not grouped)
        return dataset_fn

    return starting_at(start_step)


def _in_memory(batches: tf.data.Dataset) -> dict:
    """Every batch of `batches` concatenated: {"ids": {feature: [rows, ...]}, "labels": {task: [rows]}}."""
    ids: dict[str, list] = {}
    labels: dict[str, list] = {}
    for batch_ids, batch_labels in batches:
        for name, value in batch_ids.items():
            ids.setdefault(name, []).append(value)
        for name, value in batch_labels.items():
            labels.setdefault(name, []).append(value)
    if not labels:
        raise DataError("data.cache: the training files hold no rows")
    return {"ids": {name: tf.concat(parts, axis=0) for name, parts in ids.items()},
            "labels": {name: tf.concat(parts, axis=0) for name, parts in labels.items()}}


def eval_steps(config: Config, files: Sequence[str]) -> int:
    """Batches needed to read the held-out files once."""
    if config.train.eval_steps:
        return config.train.eval_steps
    if config.data.group_by:  # whole groups a batch: as many batches as groups_per_batch takes
        groups = grouped.file_groups(files, config.data.group_by, config.data.columns, config.data.csv_delimiter)
        per_batch = config.data.groups_per_batch or groups.per_batch(config.train.eval_batch_size)
        return max(1, math.ceil(groups.groups / per_batch))
    rows = count_rows(files, *layout(config))
    return max(1, math.ceil(rows / config.train.eval_batch_size))
