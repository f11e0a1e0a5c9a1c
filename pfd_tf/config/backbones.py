"""Checks of the multi-task backbones (`model: shared_bottom | mmoe | ple | cross_stitch`) against the tasks.

Part of `pfd_tf.config` (called by `checks.validate` after the
networks' own keys are checked from their registry entries): what only the
config's `tasks:` and a backbone together can get wrong.  Each error names
the key that must change.
"""
from __future__ import annotations

from pfd_tf.config.schema import Config, ConfigError, ZooModel

# PLE's path between levels is named `shared` (`pfd_tf.multitask.ple.SHARED`), so no task of a PLE may be.
PLE_SHARED_PATH = "shared"


def networks_with_keys(config: Config):
    """(key, network) for the served student, every other student and every teacher."""
    yield ("student" if len(config.students) == 1 else "students[0]"), config.students[0]
    for i, student in enumerate(config.students[1:], start=1):
        yield f"students[{i}]", student
    for i, teacher in enumerate(config.teachers):
        yield f"teachers[{i}]", teacher


def validate_backbones(config: Config) -> None:
    """A PLE's tasks avoid the name of its shared path."""
    names = [task.name for task in config.task_specs]
    if PLE_SHARED_PATH not in names:
        return
    for key, network in networks_with_keys(config):
        if network.model is ZooModel.PLE:
            index = names.index(PLE_SHARED_PATH)
            raise ConfigError(f"tasks[{index}].name: {PLE_SHARED_PATH!r} names PLE's shared experts' path "
                              f"({key}.model: ple); rename the task")
