"""Checks of a regression task's target keys (`tasks[i].transform`, `center`, `scale`), each error naming its key.

Part of `pfd_tf.config` (called by `checks.validate`).  A regression
task learns (transform(y) - center) / scale (`pfd_tf.tasks.targets`): the
PFD paper's MTL baseline (Section 5.3) regresses the standardized dwell
time, so that each auxiliary loss starts near 1 and fixed weights keep the
losses balanced.  A binary task's label is 0 or 1 and is never transformed.
"""
from __future__ import annotations

from pfd_tf.config.schema import Config, ConfigError
from pfd_tf.config.tasks import TaskKind

TRANSFORMS = ("none", "log1p")


def validate_task_targets(config: Config) -> None:
    for i, task in enumerate(config.tasks):
        key = f"tasks[{i}]"
        if task.transform not in TRANSFORMS:
            raise ConfigError(f"{key}.transform: unknown value {task.transform!r} (choose one of: "
                              f"{', '.join(TRANSFORMS)})")
        if not task.scale > 0:  # center and scale are finite: the parse refuses nan and inf
            raise ConfigError(f"{key}.scale: must be a positive number, got {task.scale!r}")
        if task.kind is TaskKind.BINARY:
            for name, default in (("transform", "none"), ("center", 0.0), ("scale", 1.0)):
                if getattr(task, name) != default:
                    raise ConfigError(f"{key}.{name}: only a regression task's target is transformed; "
                                      f"{task.name!r} is binary (its label is 0 or 1)")
