"""What a task's label column may hold, as the data checks and the parser both enforce it.

A binary task's label is 0 or 1.  A regression task's is a finite number,
and with `tasks[i].transform: log1p` one above -1: `log1p(y)` of y <= -1 is
-inf or NaN, which the finite-label check would pass and the divergence guard
would then catch many steps later (exit 4) instead of a data error naming the
file and line.  A column two tasks read keeps the stricter rule.
"""
from __future__ import annotations

import enum

import numpy as np

from pfd_tf.config import Config
from pfd_tf.config.tasks import TaskKind


class LabelRule(enum.Enum):
    """The values a label column takes; the value is how an error message says it."""

    BINARY = "0 or 1"
    FINITE = "a finite number"
    ABOVE_MINUS_ONE = "a finite number above -1 (a log1p target)"


_STRICTNESS = (LabelRule.FINITE, LabelRule.ABOVE_MINUS_ONE, LabelRule.BINARY)  # each admits a subset of the one before


def label_rules(config: Config) -> dict[str, LabelRule]:
    """Each task's label column -> the rule its values must meet (the strictest, if several tasks read it)."""
    rules: dict[str, LabelRule] = {}
    for task in config.task_specs:
        if task.kind is TaskKind.BINARY:
            rule = LabelRule.BINARY
        elif task.transform == "log1p":
            rule = LabelRule.ABOVE_MINUS_ONE
        else:
            rule = LabelRule.FINITE
        if task.label in rules:
            rule = max(rule, rules[task.label], key=_STRICTNESS.index)
        rules[task.label] = rule
    return rules


def label_ok(values: np.ndarray, rule: LabelRule) -> np.ndarray:
    """Which `values` meet `rule` (NaN meets none)."""
    if rule is LabelRule.BINARY:
        return np.isin(values, (0.0, 1.0))
    ok = np.isfinite(values)
    return ok & (values > -1.0) if rule is LabelRule.ABOVE_MINUS_ONE else ok
