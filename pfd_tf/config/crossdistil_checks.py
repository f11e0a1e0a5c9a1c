"""Reading and checking `distill.crossdistil:` (the schema and what it means: `pfd_tf.config.crossdistil`).

Part of `pfd_tf.config`: `parse_crossdistil` is called by the parser,
`validate_crossdistil` by `config_checks.validate`; each error names its key.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from pfd_tf.config.crossdistil import CrossDistilConfig
from pfd_tf.config.errors import ConfigError
from pfd_tf.config.tasks import TaskKind


def parse_crossdistil(raw_distill: Any, build: Callable) -> CrossDistilConfig | None:
    """`distill.crossdistil` of the parsed YAML, typed (`build`: `pfd_tf.config.parse._build`); None when absent."""
    if not isinstance(raw_distill, Mapping) or raw_distill.get("crossdistil") is None:
        return None
    return build(CrossDistilConfig, raw_distill["crossdistil"], "distill.crossdistil")


def crossdistil_tasks(config) -> tuple[str, str]:
    """(A, B): `distill.crossdistil.tasks`, or the first two tasks."""
    given = config.distill.crossdistil.tasks
    return tuple(given) if given else tuple(task.name for task in config.task_specs[:2])


def validate_crossdistil(config) -> None:
    """ConfigError naming `distill.crossdistil.<key>` for a section that cannot run."""
    section = config.distill.crossdistil
    if section is None:
        return
    key = "distill.crossdistil"
    if config.teacher_specs or config.distill.terms:
        raise ConfigError(f"{key}: the augmented tasks of the student are CrossDistil's teachers; set "
                          "distill.mode: baseline (no teacher network, no distill.terms)")
    kinds = {task.name: task.kind for task in config.task_specs}
    if section.tasks and len(section.tasks) != 2:
        raise ConfigError(f"{key}.tasks: two tasks (A, B), got {list(section.tasks)}")
    if len(kinds) < 2:
        raise ConfigError(f"{key}: CrossDistil needs two binary tasks; tasks: lists {list(kinds)}")
    tasks = crossdistil_tasks(config)
    for task in tasks:
        if task not in kinds:
            raise ConfigError(f"{key}.tasks: no task {task!r} (tasks: {', '.join(kinds)})")
        if kinds[task] is not TaskKind.BINARY:
            raise ConfigError(f"{key}.tasks: task {task!r} is {kinds[task].value}; the quadruplets of Eq. (2) split "
                              "rows by two binary labels")
    if tasks[0] == tasks[1]:
        raise ConfigError(f"{key}.tasks: two distinct tasks, got {list(tasks)}")
    for name in ("beta1", "beta2", "ranking_weight", "samples"):
        if getattr(section, name) < 0:
            raise ConfigError(f"{key}.{name}: must be >= 0, got {getattr(section, name):g}")
    for name in ("temperature", "calibration_learning_rate"):
        if not getattr(section, name) > 0:
            raise ConfigError(f"{key}.{name}: must be positive, got {getattr(section, name):g}")
    if not 0.0 <= section.alpha <= 1.0:
        raise ConfigError(f"{key}.alpha: must be in [0, 1] (Eq. (7)), got {section.alpha:g}")

