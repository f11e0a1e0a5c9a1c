"""Exact held-out metrics: rank-based AUC with ties, stable log loss, and the Evaluator that reports them."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf.names import DEFAULT_TASK
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.evaluation import Evaluator, build_local_model, calibration
from pfd_tf.metrics import exact_auc, logloss_from_logits


def brute_force_auc(labels, scores):
    """O(n^2): the share of (positive, negative) pairs ordered right, a tie counting 1/2."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


# --------------------------------------------------------------------------
# exact_auc
# --------------------------------------------------------------------------
def test_auc_with_ties_matches_the_hand_count():
    # Positives score 0.9, 0.5, 0.5; negatives 0.9, 0.5, 0.1: 9 pairs.
    #   positive 0.9: ties the 0.9 (1/2), beats 0.5 and 0.1 (1 + 1)    -> 2.5
    #   positive 0.5: loses to 0.9 (0), ties 0.5 (1/2), beats 0.1 (1)  -> 1.5, twice
    # AUC = (2.5 + 1.5 + 1.5) / 9 = 11/18.
    labels = [1, 0, 1, 0, 1, 0]
    scores = [0.9, 0.9, 0.5, 0.5, 0.5, 0.1]
    assert exact_auc(labels, scores) == pytest.approx(11 / 18, abs=1e-15)
    # The order of the rows does not matter.
    perm = [5, 2, 0, 4, 1, 3]
    assert exact_auc(np.array(labels)[perm], np.array(scores)[perm]) == pytest.approx(11 / 18, abs=1e-15)


def test_perfect_inverted_and_constant_rankings():
    labels = np.array([0, 0, 1, 0, 1, 1])
    scores = np.array([-3.0, -1.0, 2.0, 0.5, 4.0, 1.5])
    assert exact_auc(labels, scores) == 1.0
    assert exact_auc(labels, -scores) == 0.0
    assert exact_auc(labels, np.zeros(6)) == 0.5  # all tied: every pair counts 1/2


def test_auc_is_invariant_under_monotone_transforms():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.integers(-4, 5, 500).astype(np.float64)  # many ties
    auc = exact_auc(labels, scores)
    for transformed in (2 * scores - 7, scores**3, np.exp(scores), 1 / (1 + np.exp(-scores))):
        assert exact_auc(labels, transformed) == auc
    assert exact_auc(labels, -scores) == pytest.approx(1 - auc, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_the_brute_force_pair_count(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]  # both classes present
    scores = rng.integers(0, int(rng.integers(1, 12)), n).astype(np.float32)  # heavy ties
    assert exact_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)
    continuous = rng.normal(size=n)
    assert exact_auc(labels.astype(bool), continuous) == pytest.approx(brute_force_auc(labels, continuous), abs=1e-12)


def test_auc_is_nan_for_one_class_or_a_nan_score():
    assert math.isnan(exact_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert math.isnan(exact_auc([0, 0], [0.1, 0.2]))
    assert math.isnan(exact_auc([], []))
    assert math.isnan(exact_auc([0, 1], [0.1, float("nan")]))


def test_auc_refuses_soft_labels_and_mismatched_sizes():
    with pytest.raises(ValueError, match="0/1 labels, found 0.7"):
        exact_auc([0, 1, 0.7], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        exact_auc([0, 1, 1], [0.1, 0.2])


# --------------------------------------------------------------------------
# logloss_from_logits
# --------------------------------------------------------------------------
def test_logloss_matches_the_definition_and_is_stable():
    labels = np.array([1.0, 0.0, 1.0, 0.0, 0.3])
    logits = np.array([2.0, -1.0, -0.5, 0.25, 1.0])
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert logloss_from_logits(labels, logits) == pytest.approx(expected, rel=1e-12)
    # Where sigmoid saturates: right answers cost 0, wrong ones |z|, no inf or nan.
    assert logloss_from_logits([1, 0], [1000.0, -1000.0]) == 0.0
    assert logloss_from_logits([0, 1], [1000.0, -1000.0]) == pytest.approx(1000.0)
    assert math.isnan(logloss_from_logits([], []))


# --------------------------------------------------------------------------
# Evaluator
# --------------------------------------------------------------------------
def _held_out_logits(config, checkpoint):
    """Labels and student/teacher logits of every held-out row, computed apart from the Evaluator."""
    model = build_local_model(config)
    tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()
    labels, student, teacher = [], [], []
    for ids, y in make_dataset_fn(config, "eval", config.train.eval_batch_size, training=False)(None):
        labels.append(y[DEFAULT_TASK].numpy().reshape(-1))
        student.append(model.student(ids, training=False).numpy().reshape(-1))
        teacher.append(model.teacher(ids, training=False).numpy().reshape(-1))
    return np.concatenate(labels), np.concatenate(student), np.concatenate(teacher)


def test_evaluator_and_metrics_json_report_the_exact_auc_of_the_predictions(trained_run):
    config, model_dir, metrics = trained_run
    labels, student, teacher = _held_out_logits(config, metrics["checkpoint"])
    assert 0 < labels.sum() < labels.size and student.std() > 0

    results = Evaluator(config)(metrics["checkpoint"])
    assert set(results) == {"loss", "loss_student", "loss_teacher", "loss_distill", "lambda",
                            "student_logloss", "teacher_logloss", "student_auc", "teacher_auc", "step",
                            *(f"{who}_{c}" for who in ("student", "teacher") for c in ("ece", "mean_pq", "mean_p"))}
    assert results["step"] == config.train.steps
    assert results["student_auc"] == pytest.approx(exact_auc(labels, student), abs=1e-9)
    assert results["teacher_auc"] == pytest.approx(exact_auc(labels, teacher), abs=1e-9)
    assert results["student_logloss"] == pytest.approx(logloss_from_logits(labels, student), rel=1e-5)
    assert results["teacher_logloss"] == pytest.approx(logloss_from_logits(labels, teacher), rel=1e-5)
    # Loss terms are means over rows, so the student's label loss is its log loss.
    assert results["loss_student"] == pytest.approx(results["student_logloss"], rel=1e-5)
    assert results["lambda"] == pytest.approx(config.distill.lambda_)
    for who, logits in (("student", student), ("teacher", teacher)):  # calibration from the same logits
        p = 1 / (1 + np.exp(-logits.astype(np.float64)))
        assert results[f"{who}_mean_pq"] == pytest.approx(np.mean(p * (1 - p)), rel=1e-5)
        assert results[f"{who}_mean_p"] == pytest.approx(p.mean(), rel=1e-5)
        assert results[f"{who}_ece"] == pytest.approx(calibration(labels, logits)["ece"], rel=1e-4)

    with open(os.path.join(model_dir, "metrics.json")) as f:
        saved = json.load(f)
    for who in ("student", "teacher"):
        assert saved[who]["auc"] == pytest.approx(results[f"{who}_auc"], abs=1e-12)
        assert saved[who]["logloss"] == pytest.approx(results[f"{who}_logloss"], abs=1e-12)
        assert saved["eval"][f"{who}_auc"] == saved[who]["auc"]

    # The pair count agrees; Keras' AUC, a sum over fixed thresholds, only nears it with very many.
    assert results["student_auc"] == pytest.approx(brute_force_auc(labels, student), abs=1e-12)
    fine = keras.metrics.AUC(num_thresholds=1_000_000, from_logits=True)
    fine.update_state(labels, student)
    assert float(fine.result()) == pytest.approx(results["student_auc"], abs=1e-3)


@pytest.mark.parametrize("overrides", [
    ["distill.mode=baseline"],
    ["distill.mode=pfd"],
    ["model.sharing=independent", "distill.teacher_only=true"],
], ids=["baseline", "pfd", "teacher_only"])
def test_evaluator_reports_the_keys_of_test_step(tiny_config_path, tmp_path, overrides):
    config = config_lib.load(tiny_config_path, overrides)
    model = build_local_model(config)  # untrained: random weights still rank the rows
    checkpoint = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    results = Evaluator(config)(checkpoint)
    expected = model.evaluate(make_dataset_fn(config, "eval", 128, training=False)(None), return_dict=True, verbose=0)
    calibrated = {f"{key[:-len('_logloss')]}_{c}" for key in expected if key.endswith("_logloss")
                  for c in ("ece", "mean_pq", "mean_p")}
    assert set(results) == set(expected) | {"step"} | calibrated
    assert results["step"] == 0
    assert all(isinstance(value, float) and math.isfinite(value) for k, value in results.items() if k != "step")
