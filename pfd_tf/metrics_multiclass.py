"""Multi-AUC: how well one score ranks the four ordered label combinations of two tasks, Eq. (12).

CrossDistil ("Cross-Task Knowledge Distillation in Multi-Task
Recommendation", Section 4.2) measures multipartite ranking: for task A the
classes are ordered x_{++} > x_{+-} > x_{-+} > x_{--} (A's label first, B's
breaking ties), for task B x_{++} > x_{-+} > x_{+-} > x_{--}.  Its Eq. (12),
the prevalence-weighted Hand & Till (2001) measure of Ferri et al. (2009):

    Multi-AUC = 2 / (c (c - 1)) sum_{j<k} p(j u k) AUC(k, j)

with AUC(k, j) the AUC of the higher class k against the lower class j
(ties counting 1/2, `pfd_tf.metrics.exact_auc`) and p(j u k) the share of
rows in class j or k.  Read literally the weights do not sum to one: every
class is in c - 1 pairs, so sum_{j<k} p(j u k) = c - 1 and a perfect
ranking would score 2 / c (0.5 for four classes), while the paper's tables
report 0.60-0.83.  So the weights are normalised here, to their sum over the
pairs whose classes both occur:

    Multi-AUC = sum_{j<k} p(j u k) AUC(k, j) / sum_{j<k} p(j u k)

which is 1 for a perfect ranking, 0.5 for a constant score, and Hand &
Till's unweighted mean of the pairwise AUCs when the classes are equally
frequent.  A pair with an absent class has no AUC and is left out of both
sums; with fewer than two classes present the result is NaN.
"""
from __future__ import annotations

import numpy as np

from pfd_tf.metrics import exact_auc

TASK_A, TASK_B = "A", "B"


def ordered_classes(labels_a, labels_b, task: str = TASK_A) -> np.ndarray:
    """Each row's class rank, 3 (best) .. 0: for task A 2 y_A + y_B (++ 3, +- 2, -+ 1, -- 0), for task B
    2 y_B + y_A (++ 3, -+ 2, +- 1, -- 0)."""
    a, b = _zero_one(labels_a, "A"), _zero_one(labels_b, "B")
    if a.shape != b.shape:
        raise ValueError(f"{a.size} labels of task A but {b.size} of task B")
    if task == TASK_A:
        return 2 * a + b
    if task == TASK_B:
        return 2 * b + a
    raise ValueError(f"task must be {TASK_A!r} or {TASK_B!r}, got {task!r}")


def _zero_one(labels, task: str) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise ValueError(f"task {task}'s labels must be 0/1, found {labels[bad][0].item()!r}")
    return labels.astype(np.int64)


def pairwise_aucs(classes, scores, n_classes: int) -> dict[tuple[int, int], float]:
    """(j, k) -> AUC(k, j) for every j < k whose classes both occur (class k the positive one)."""
    classes = np.asarray(classes).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if classes.shape != scores.shape:
        raise ValueError(f"{classes.size} classes but {scores.size} scores")
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"classes must be in 0..{n_classes - 1}, found {classes.min()}..{classes.max()}")
    present = [c for c in range(n_classes) if np.any(classes == c)]
    aucs = {}
    for j in present:
        for k in present:
            if j < k:
                rows = (classes == j) | (classes == k)
                aucs[(j, k)] = exact_auc(classes[rows] == k, scores[rows])
    return aucs


def prevalence_weighted_auc(classes, scores, n_classes: int) -> float:
    """Eq. (12), normalised (module docstring): the pairwise AUCs weighted by p(j u k)."""
    classes = np.asarray(classes).reshape(-1)
    aucs = pairwise_aucs(classes, scores, n_classes)
    if not aucs:
        return float("nan")
    counts = np.bincount(classes, minlength=n_classes).astype(np.float64)
    weights = {pair: (counts[pair[0]] + counts[pair[1]]) / classes.size for pair in aucs}
    return float(sum(weights[pair] * auc for pair, auc in aucs.items()) / sum(weights.values()))


def multi_auc(labels_a, labels_b, scores, task: str = TASK_A) -> float:
    """Eq. (12) for task `task`'s `scores` (pass logits: any monotone map gives the same value)."""
    return prevalence_weighted_auc(ordered_classes(labels_a, labels_b, task), scores, 4)
