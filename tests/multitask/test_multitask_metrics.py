"""Multi-AUC of Eq. (12) (CrossDistil): prevalence-weighted pairwise AUCs over the four ordered label
combinations, against hand computations, with ties and an absent class."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pfd_tf.metrics_multiclass import (
    TASK_A,
    TASK_B,
    multi_auc,
    ordered_classes,
    pairwise_aucs,
    prevalence_weighted_auc,
)

# Six rows (y_A, y_B, score): for task A the classes are ++ 3, +- 2, -+ 1, -- 0.
LABELS_A = [1, 1, 1, 0, 0, 0]
LABELS_B = [1, 0, 0, 1, 0, 0]
SCORES = [0.9, 0.8, 0.4, 0.5, 0.5, 0.1]


def test_classes_are_ordered_by_the_tasks_own_label_first():
    np.testing.assert_array_equal(ordered_classes(LABELS_A, LABELS_B, TASK_A), [3, 2, 2, 1, 0, 0])
    np.testing.assert_array_equal(ordered_classes(LABELS_A, LABELS_B, TASK_B), [3, 1, 1, 2, 0, 0])


def test_multi_auc_matches_the_hand_computation():
    # Pairwise AUC(k, j), class k positive (a tie counting 1/2), and the weight p(j u k):
    #   (0,1): {.5} vs {.5, .1}: (1/2 + 1) / 2 = .75          weight 3/6
    #   (0,2): {.8, .4} vs {.5, .1}: (2 + 1) / 4 = .75         weight 4/6
    #   (0,3): {.9} vs {.5, .1}: 1                             weight 3/6
    #   (1,2): {.8, .4} vs {.5}: 1 / 2 = .5                     weight 3/6
    #   (1,3): {.9} vs {.5}: 1                                 weight 2/6
    #   (2,3): {.9} vs {.8, .4}: 1                             weight 3/6
    # Weighted sum 14.75 / 6 over the weights' sum 18 / 6 (= c - 1): 14.75 / 18.
    classes = ordered_classes(LABELS_A, LABELS_B, TASK_A)
    assert pairwise_aucs(classes, SCORES, 4) == {(0, 1): 0.75, (0, 2): 0.75, (0, 3): 1.0, (1, 2): 0.5,
                                                 (1, 3): 1.0, (2, 3): 1.0}
    assert multi_auc(LABELS_A, LABELS_B, SCORES, TASK_A) == pytest.approx(14.75 / 18, abs=1e-12)
    # Eq. (12) read literally, 2 / (c (c - 1)) * 14.75 / 6 = 0.41, could not reach 1: see the module docstring.


def test_an_absent_class_leaves_its_pairs_out():
    # Without the -+ row (class 1): (0,2) .75 weight 4/5, (0,3) 1 weight 3/5, (2,3) 1 weight 3/5.
    keep = [0, 1, 2, 4, 5]
    value = multi_auc(np.take(LABELS_A, keep), np.take(LABELS_B, keep), np.take(SCORES, keep), TASK_A)
    assert value == pytest.approx((0.75 * 4 + 3 + 3) / 10, abs=1e-12)
    assert not math.isnan(value)


def test_task_b_ranks_by_bs_label_first():
    # Task B classes [3, 1, 1, 2, 0, 0]: (0,1) {.8,.4} vs {.5,.1}: .75, w 4/6; (0,2) {.5} vs {.5,.1}: .75, w 3/6;
    # (0,3) 1, w 3/6; (1,2) {.5} vs {.8,.4}: .5, w 3/6; (1,3) 1, w 3/6; (2,3) 1, w 2/6.
    expected = (0.75 * 4 + 0.75 * 3 + 3 + 0.5 * 3 + 3 + 2) / 18
    assert multi_auc(LABELS_A, LABELS_B, SCORES, TASK_B) == pytest.approx(expected, abs=1e-12)


def test_a_perfect_ranking_scores_one_and_a_constant_one_half():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 4, 200)
    assert prevalence_weighted_auc(classes, classes + rng.random(200) * 0.5, 4) == pytest.approx(1.0)
    assert prevalence_weighted_auc(classes, np.zeros(200), 4) == pytest.approx(0.5)
    # Reversed ranking: 0.
    assert prevalence_weighted_auc(classes, -classes, 4) == pytest.approx(0.0)


def test_equal_class_sizes_give_hand_and_tills_unweighted_mean():
    rng = np.random.default_rng(1)
    classes = np.repeat(np.arange(4), 25)
    scores = classes + rng.normal(size=100) * 2
    aucs = pairwise_aucs(classes, scores, 4)
    assert prevalence_weighted_auc(classes, scores, 4) == pytest.approx(np.mean(list(aucs.values())), abs=1e-12)


def test_fewer_than_two_classes_is_nan_and_bad_labels_are_errors():
    assert math.isnan(multi_auc([1, 1], [0, 0], [0.3, 0.2]))
    with pytest.raises(ValueError, match="task B's labels must be 0/1, found 2"):
        multi_auc([1, 0], [2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="2 labels of task A but 3 of task B"):
        multi_auc([1, 0], [1, 0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="task must be 'A' or 'B'"):
        multi_auc([1, 0], [1, 0], [0.1, 0.2], task="C")
    with pytest.raises(ValueError, match="classes must be in 0..3"):
        prevalence_weighted_auc([0, 4], [0.1, 0.2], 4)
