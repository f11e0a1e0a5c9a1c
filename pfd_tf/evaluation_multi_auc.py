"""The held-out Multi-AUC of CrossDistil's Eq. (12) for a run with two binary tasks, per network and task.

"Cross-Task Knowledge Distillation in Multi-Task Recommendation" (AAAI
2022, Section 4.2) scores each task's predictions by how well they rank the
four ordered label combinations of the two tasks (for task A: ++ > +- > -+ >
--, A's label first; for task B the roles swapped), weighted by prevalence
(`pfd_tf.metrics_multiclass`, whose docstring says how its weights are
normalised).  When the config's first two tasks are binary they are A and
B (the served task is A; the auxiliary tasks of the MTL baseline come after
the world's own, `pfd_tf.datasets.mtl_baseline_config`).  `pfd_tf.evaluation.Evaluator` adds
the scores to its results as `multi_auc_<who>` (the served task) and
`multi_auc_<who>_<task>`, and `summary` gives metrics.json's `multi_auc`:
network -> task -> Multi-AUC.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pfd_tf.metrics_multiclass import TASK_A, TASK_B, multi_auc

PREFIX = "multi_auc_"


def task_pair(tasks: Sequence) -> tuple | None:
    """(A, B): the first two tasks of `tasks` (`pfd_tf.tasks` objects) when both are binary, else None."""
    pair = tuple(tasks[:2])
    return pair if len(pair) == 2 and all(task.kind == "binary" for task in pair) else None


def multi_auc_results(tasks: Sequence, labels: Mapping[str, Sequence[np.ndarray]],
                      logits: Mapping[str, Sequence[np.ndarray]], networks: Sequence[str]) -> dict[str, float]:
    """`multi_auc_<task.key(who)>` for each network `who` and each of the pair's tasks whose held-out logits are
    in `logits` (keys `<task.key(who)>_logits`, batches as lists); `labels`: task name -> its label batches."""
    pair = task_pair(tasks)
    if pair is None:
        return {}
    y_a, y_b = (np.concatenate(labels[task.name]) for task in pair)
    results = {}
    for who in networks:
        for task, role in zip(pair, (TASK_A, TASK_B)):
            key = task.key(who)
            if f"{key}_logits" in logits:
                results[PREFIX + key] = multi_auc(y_a, y_b, np.concatenate(logits[f"{key}_logits"]), role)
    return results


def summary(results: Mapping[str, float], tasks: Sequence, networks: Sequence[str]) -> dict:
    """{"multi_auc": {network: {task name: Multi-AUC}}} from `results`; {} for a run without two binary tasks."""
    pair = task_pair(tasks)
    if pair is None:
        return {}
    table = {who: {task.name: float(results[PREFIX + task.key(who)]) for task in pair
                   if PREFIX + task.key(who) in results} for who in networks}
    return {"multi_auc": {who: scores for who, scores in table.items() if scores}}
