"""The teacher gating network trained on validation rows (`distill.gate_data: validation`).

Why.  The gate of Eq. (11) of Zhu et al. 2020 weighs the teachers per
example; Eq. (11) leaves open what trains it, and pfd_tf trains it by the
ensemble's log loss on the labels (`pfd_tf.distill.ensemble`).  On the
training rows that loss rewards the teacher that fits them best, which is
the one that overfits: on world 0 of the ensemble world the train-fed gate
gave FM, the teacher with the worst held-out log loss, weight 0.68
(docs/results.md, issue 12).  Section 3.4.2 of the paper makes the
validation set (the most recent rows) do double duty; here it is where the
gate learns, from rows no network trains on, so it weighs the teachers by
how they do on unseen rows.

How.  Every element `fit` reads is a pair `((ids, labels), (gate_ids,
gate_labels))`: the training stream zipped with an endless shuffled stream
of `data.validation_files` (`with_gate_batches`).  The distiller's
`train_step` computes every loss on the training batch as before, except the
gate's, which it computes on the validation batch from the teachers'
detached logits in inference mode: the gate moves only by validation rows,
and nothing else moves by them (no teacher, student, table or batch-norm
statistic).  Stock `fit` still loops, so ParameterServerStrategy's
coordinator, retries and callbacks are unchanged; each worker reads the
validation files itself (the same stream on every worker: the gate has 2M
parameters, so seeing a batch once per worker does not matter).
"""
from __future__ import annotations

import dataclasses
import os

from pfd_tf._keras import tf
from pfd_tf.config import Config, ConfigError, GateData
from pfd_tf.data.files import resolve_files
from pfd_tf.data.pipeline import make_dataset_fn


def on_validation(config: Config) -> bool:
    return config.distill.gate_data is GateData.VALIDATION


def check_files(config: Config) -> None:
    """The gate's rows must be neither training nor held-out rows; ConfigError naming `data.validation_files`."""
    if not on_validation(config):
        return
    train = {os.path.realpath(p) for p in resolve_files(config, "train_files")}
    held_out = {os.path.realpath(p) for p in resolve_files(config, "eval_files")}
    for path in (os.path.realpath(p) for p in resolve_files(config, "validation_files")):
        for where, key in ((train, "training file (data.train_files)"), (held_out, "held-out file (data.eval_files)")):
            if path in where:
                raise ConfigError(f"data.validation_files: {path} is a {key}; distill.gate_data: validation trains "
                                  "the gate on rows no network trains on and the evaluation does not score")


def gate_batches_fn(config: Config):
    """The endless, shuffled stream of the validation files' batches (`starting_at(step)`), or None."""
    if not on_validation(config):
        return None
    validation = dataclasses.replace(config, data=dataclasses.replace(
        config.data, train_files=config.data.validation_files))
    return make_dataset_fn(validation, "train", config.train.batch_size, training=True)


def with_gate_batches(train_fn, gate_fn, step: int):
    """`train_fn`'s batches each paired with a validation batch (read from `step` on); `train_fn` if no `gate_fn`."""
    if gate_fn is None:
        return train_fn
    gate_from_step = gate_fn.starting_at(step)

    def dataset_fn(input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        return tf.data.Dataset.zip((train_fn(input_context), gate_from_step(input_context)))

    dataset_fn.files = list(train_fn.files) + list(gate_from_step.files)  # type: ignore[attr-defined]
    return dataset_fn
