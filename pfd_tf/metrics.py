"""Exact held-out metrics in numpy: AUC by ranks and log loss from logits.

Keras' `AUC` metric buckets the scores into fixed thresholds and sums the
ROC curve's trapezoids between them (a Riemann approximation), so its value
depends on `num_thresholds` and on how the scores spread over [0, 1].  The
held-out numbers of a run (`metrics.json`, the evaluator task, the
benchmarks) are compared across methods to the third decimal, so they are
computed here exactly, over every held-out row at once.  The progress AUCs
that `fit` prints during training remain Keras metrics.
"""
from __future__ import annotations

import numpy as np


def _binary_labels(labels) -> np.ndarray:
    """The labels as a flat bool array; anything but 0/1 is an error, not silently thresholded."""
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            bad = labels[~np.isin(labels, (0, 1))][0].item()
            raise ValueError(f"AUC needs 0/1 labels, found {bad!r}")
        labels = labels == 1
    return labels


def exact_auc(labels, scores) -> float:
    """Area under the ROC curve, exactly: the Mann–Whitney U statistic over n_pos * n_neg.

    It is the probability that a random positive scores above a random
    negative, a tie counting 1/2.  Computed from ranks in O(n log n): sort the
    scores once, give tied scores the average of their ranks, then
    AUC = (sum of the positives' ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg).
    Ranks are kept doubled, as integers, so the sum is exact.

    Any monotone transform of the scores gives the same AUC, so pass logits
    rather than probabilities: a float32 sigmoid saturates and would tie
    scores that the logits still order.

    Returns NaN (for the caller to report or skip) when only one class is
    present, where the AUC is undefined, and when a score is NaN.  Raises
    ValueError for labels other than 0/1 or for labels and scores of
    different sizes.
    """
    positive = _binary_labels(labels)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape != positive.shape:
        raise ValueError(f"{positive.size} labels but {scores.size} scores")
    n = positive.size
    n_pos = int(positive.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0 or np.isnan(scores).any():
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first index of each run of ties
    ends = np.r_[starts[1:], n]  # one past its last index
    doubled_rank = starts + 1 + ends  # 2 x the average of the 1-based ranks start+1 .. end
    positives_in_run = np.add.reduceat(positive[order].astype(np.int64), starts)
    doubled_rank_sum = int(np.dot(doubled_rank.astype(np.int64), positives_in_run))
    doubled_u = doubled_rank_sum - n_pos * (n_pos + 1)
    return doubled_u / (2 * n_pos * n_neg)


def logloss_from_logits(labels, logits) -> float:
    """Mean binary cross entropy of labels in [0, 1] against sigmoid(logits), in float64.

    Uses the stable form max(z, 0) - z y + log(1 + e^-|z|), which equals
    -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) (Eq. (6) of the PFD paper)
    without overflow for large |z|.  Returns NaN for no rows.
    """
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if labels.shape != logits.shape:
        raise ValueError(f"{labels.size} labels but {logits.size} logits")
    if labels.size == 0:
        return float("nan")
    per_row = np.maximum(logits, 0.0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    return float(per_row.mean())
