"""Checks of the config's tasks (`tasks:`, or the one task `data.label` stands for), each error naming its key.

Part of `pfd_tf.config` (called by `checks.validate`).  A task's name
becomes a key of batches, metrics and export outputs, so it is a lowercase
identifier and unique; a label column is read by one task (and by no feature: `checks`).
"""
from __future__ import annotations

import math
import re

from pfd_tf.config.schema import Config, ConfigError
from pfd_tf.config.tasks import TaskKind

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def label_key(config: Config, index: int) -> str:
    """The key that names task `index`'s label column: `tasks[i].label`, or `data.label` for its shorthand."""
    return f"tasks[{index}].label" if config.tasks else "data.label"


def label_columns(config: Config) -> dict[str, str]:
    """Each task's label column -> the key naming it (`label_key`)."""
    return {task.label: label_key(config, i) for i, task in enumerate(config.task_specs)}


def validate_tasks(config: Config) -> None:
    """ConfigError naming `tasks[i].<key>` (or `data.label` for its shorthand) for a task that cannot run."""
    specs = config.task_specs
    if not specs:
        raise ConfigError("data.label: required key is missing (the label column; or list the labels as tasks:)")
    names: dict[str, int] = {}
    labels: dict[str, int] = {}
    for i, task in enumerate(specs):
        key = f"tasks[{i}]" if config.tasks else "data.label"
        name_key, label_key = (f"{key}.name", f"{key}.label") if config.tasks else (key, key)
        if not task.name:
            raise ConfigError(f"{name_key}: must not be empty")
        if not _NAME.match(task.name):
            raise ConfigError(f"{name_key}: {task.name!r} is not a lowercase identifier (letters, digits and _, "
                              "starting with a letter): it becomes a metric and export key")
        if task.name in names:
            raise ConfigError(f"{name_key}: duplicate task name {task.name!r} (also tasks[{names[task.name]}])")
        names[task.name] = i
        if not task.label:
            raise ConfigError(f"{label_key}: must not be empty")
        if task.label in labels:
            raise ConfigError(f"{label_key}: column {task.label!r} is already tasks[{labels[task.label]}]'s label")
        labels[task.label] = i
        if not (math.isfinite(task.weight) and task.weight > 0):
            raise ConfigError(f"{key}.weight: must be a positive number, got {task.weight!r}")
    # The first task is the served one: the soft label, the ensemble, the held-out AUC and the export's
    # probability read its logits.
    if specs[0].kind is not TaskKind.BINARY:
        raise ConfigError(f"tasks[0].kind: the served task is binary for now (the soft label, the held-out AUC "
                          f"and the export read probabilities); got {specs[0].kind.value}")
