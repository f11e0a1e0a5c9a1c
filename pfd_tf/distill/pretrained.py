"""The pre-train scheme (Section 3.4.1 of Zhu et al. 2020; the PFD paper's Ind&Async): teachers restored from
their own runs and frozen.

A teacher of the config with a `checkpoint` (a run's model_dir, or one
checkpoint prefix) is built with its own tables (`pfd_tf.models.build`),
restored from that run's checkpoint and set non-trainable: it runs in
inference mode, has no loss, and no optimizer slot.
"""
from __future__ import annotations

import os

from pfd_tf._keras import tf
from pfd_tf.config import Config, ConfigError, Mode
from pfd_tf.distill.distiller import Distiller
from pfd_tf.names import teacher_attribute


def teacher_checkpoint(path: str) -> str:
    """A checkpoint prefix from a `checkpoint:` value: a run's model_dir (its latest checkpoint) or a prefix."""
    for directory in (os.path.join(path, "checkpoints"), path):
        if os.path.isdir(directory):
            latest = tf.train.latest_checkpoint(directory)
            if latest:
                return latest
            raise ValueError(f"{path}: no checkpoint in {directory}")
    return path


def checkpoint_keys(checkpoint_path: str) -> tuple[str, list[str]]:
    """(checkpoint prefix, the paths of its variables) for a `checkpoint:` value (a run's model_dir or a prefix).
    ValueError, saying why, when there is no checkpoint there."""
    path = teacher_checkpoint(checkpoint_path)
    try:
        return path, [key for key, _ in tf.train.list_variables(path)]
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as err:
        reason = " ".join(str(err).split())[:200]
        raise ValueError(f"{checkpoint_path}: not a run's model_dir or a checkpoint ({reason})") from None


def source_teacher(name: str, checkpoint_path: str) -> tuple[str, str]:
    """(checkpoint prefix, the attribute of the teacher to restore there) for teacher `name`.

    The other run's teacher is the one of the same name (`model/teacher` or
    `model/teacher_<name>`), or its only teacher whatever its name.
    ValueError, saying why, when there is no such checkpoint or teacher.
    """
    path, keys = checkpoint_keys(checkpoint_path)
    found = sorted({key.split("/")[1] for key in keys if key.startswith("model/teacher")})
    wanted = teacher_attribute(name)
    if wanted not in found and len(found) != 1:
        listed = ", ".join(found) or "none"
        raise ValueError(f"{checkpoint_path}: no teacher {name!r} to restore (teachers there: {listed})")
    return path, wanted if wanted in found else found[0]


def restore_network(network, attribute: str, path: str) -> None:
    """Restores `network` (its layers and the tables it reads) from `model/<attribute>` of checkpoint `path`.

    Variables are restored after their creation, wherever the strategy put them (call it under
    `strategy.scope()`).  AssertionError when the network has a variable the checkpoint lacks; ValueError
    when a shape differs.
    """
    holder = tf.Module()
    setattr(holder, attribute, network)
    status = tf.train.Checkpoint(model=holder).read(path)
    status.expect_partial().assert_existing_objects_matched()


def check_checkpoints(config: Config) -> None:
    """Every pre-trained teacher's checkpoint exists and holds a teacher: ConfigError naming the key, before
    anything is written."""
    for i, teacher in enumerate(config.teacher_specs):
        if not teacher.checkpoint:
            continue
        key = "distill.teacher_checkpoint" if config.distill.mode is not Mode.TEACHERS else f"teachers[{i}].checkpoint"
        try:
            source_teacher(teacher.name, config.resolve_path(teacher.checkpoint))
        except ValueError as err:
            hint = "" if os.path.isabs(teacher.checkpoint) else " (a relative path is relative to the config file)"
            raise ConfigError(f"{key}: {err}{hint}") from None


def load_teacher(model: Distiller, name: str, checkpoint_path: str) -> None:
    """The pre-train scheme (Ind&Async): restores teacher `name` from another run's checkpoint and freezes it."""
    path, source = source_teacher(name, checkpoint_path)
    restore_network(model.teachers[name], source, path)
    model.teachers[name].trainable = False
