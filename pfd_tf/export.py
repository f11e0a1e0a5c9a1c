"""Exports the student alone as a SavedModel that any TensorFlow serving system reads.

The student is rebuilt outside any distribution strategy, so its tables are
plain variables even if training sharded them across parameter servers; its
weights are restored from the training checkpoint by object path
(`model/student/...`), which reassembles sharded tables in partition order.
The `serving_default` signature takes exactly the columns the student's
features read, as raw values keyed by column name
(`pfd_tf.features.serving_signature`), encodes them inside the graph and
returns the purchase/click probability and the logit (the served task's, the
first of `pfd_tf.tasks`); with several tasks, each other task's head adds
`probability_<task>` and `logit_<task>` (a binary task) or
`prediction_<task>` (a regression task).  Nothing of the teacher and no
privileged feature is reachable from the export.
"""
from __future__ import annotations

import os

from pfd_tf._keras import tf
from pfd_tf.config import Config, TaskKind
from pfd_tf.features import FeatureEncoder, serving_signature
from pfd_tf.models.build import build_student, build_weights
from pfd_tf.names import SERVED, student_attribute


class ExportError(ValueError):
    """The student cannot be exported as configured; the message names the feature."""


def check_student_inputs(config: Config) -> None:
    """Refuses a student that reads a privileged feature or one of its columns."""
    privileged_columns = {f.source: f.name for f in config.privileged_features}
    for spec in config.student_features:
        if spec.privileged:
            raise ExportError(f"student input {spec.name!r} is a privileged feature")
        if spec.source in privileged_columns:
            raise ExportError(
                f"student input {spec.name!r} reads column {spec.source!r}, the source of "
                f"privileged feature {privileged_columns[spec.source]!r}"
            )


class _Holder(tf.Module):
    """Mirrors the `model` root of the training checkpoint down to one student (`model/student`, or
    `model/student_<name>` for another student of the config)."""

    def __init__(self, student, name: str = SERVED):
        super().__init__()
        setattr(self, student_attribute(name), student)


class ServingStudent(tf.Module):
    """Encoder + student, with the serving function."""

    def __init__(self, config: Config, student):
        super().__init__(name="serving_student")
        self.encoder = FeatureEncoder(config.student_features, name="student_encoder")
        self.student = student
        self.other_tasks = [(task.name, task.kind) for task in config.task_specs[1:]]
        signature = serving_signature(config.student_features)
        self.serve = tf.function(self._serve, input_signature=[signature])

    def _serve(self, features):
        if not self.other_tasks:
            logits = self.student(self.encoder(features), training=False)
            return {"probability": tf.sigmoid(logits), "logit": logits}
        output = self.student.forward(self.encoder(features), training=False)
        served = {"probability": tf.sigmoid(output.logits), "logit": output.logits}
        for name, kind in self.other_tasks:
            logits = output.by_task[name]
            served.update({f"prediction_{name}": logits} if kind is TaskKind.REGRESSION else
                          {f"probability_{name}": tf.sigmoid(logits), f"logit_{name}": logits})
        return served


def restore_student(config: Config, checkpoint_path: str, name: str = SERVED):
    """A plain-variable student `name` holding the weights saved in `checkpoint_path`; ExportError when they do
    not fit it (a config that did not train that checkpoint: `pfd_tf.config.fingerprint` catches a run's own)."""
    if tf.distribute.has_strategy():
        raise ExportError("export must run outside any distribution strategy scope")
    student = build_student(config, name=name)
    build_weights(student, config)
    try:
        status = tf.train.Checkpoint(model=_Holder(student, name)).read(checkpoint_path)
        status.expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as err:  # a table of another shape, a layer missing
        reason = " ".join(str(err).split())[:300]
        raise ExportError(f"{checkpoint_path}: does not hold the student the config describes ({reason}); "
                          "its config is not the one that trained it") from None
    return student


def export_student(config: Config, checkpoint_path: str, export_dir: str, name: str = SERVED) -> str:
    """Writes student `name`'s SavedModel to `export_dir` and returns the path."""
    check_student_inputs(config)
    module = ServingStudent(config, restore_student(config, checkpoint_path, name))
    tmp = export_dir.rstrip("/") + ".tmp"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve.get_concrete_function()})
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    os.makedirs(os.path.dirname(os.path.abspath(export_dir)), exist_ok=True)
    tf.io.gfile.rename(tmp, export_dir)
    return export_dir
