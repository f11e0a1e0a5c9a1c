"""What a teacher adds (pfd_tf.compare.diagnostic) and the Evaluator's calibration numbers, on hand values."""
import json
import math

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf.compare import diagnostic, report
from pfd_tf.compare.methods import Method
from pfd_tf.compare.runs import Run
from pfd_tf.config import Mode
from pfd_tf.evaluation import calibration


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


def test_calibration_by_hand():
    """Four rows, two bins of two (sorted by p): bin 1 has p 0.1, 0.2 and labels 0, 1 (|0.5 - 0.15| = 0.35),
    bin 2 p 0.6, 0.9 and labels 1, 1 (|1 - 0.75| = 0.25): ECE = (2 * 0.35 + 2 * 0.25) / 4 = 0.3."""
    labels, p = [1, 0, 1, 1], [0.2, 0.1, 0.9, 0.6]
    out = calibration(labels, _logit(p), bins=2)
    assert out["ece"] == pytest.approx(0.3)
    assert out["mean_pq"] == pytest.approx((0.16 + 0.09 + 0.09 + 0.24) / 4)
    assert out["mean_p"] == pytest.approx(0.45)
    assert calibration(labels, _logit(p), bins=1)["ece"] == pytest.approx(abs(0.75 - 0.45))
    # More bins than rows: one row a bin, |y - p| per row.
    assert calibration(labels, _logit(p), bins=20)["ece"] == pytest.approx((0.8 + 0.1 + 0.1 + 0.4) / 4)


def test_a_calibrated_predictor_has_a_small_ece_and_a_shifted_one_its_shift():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.6, 200_000)
    y = rng.random(p.size) < p
    assert calibration(y, _logit(p))["ece"] < 0.005
    assert calibration(y, _logit(np.clip(p + 0.1, 0, 0.99)))["ece"] == pytest.approx(0.1, abs=0.005)


def test_noise_left_and_the_score_by_hand():
    assert diagnostic.noise_left(0.05, 0.2) == pytest.approx(0.25)
    assert diagnostic.gain_score(0.25) == pytest.approx(0.1875)
    assert diagnostic.gain_score(0.5) == pytest.approx(0.25)  # the largest
    assert diagnostic.gain_score(0.0) == 0.0 and diagnostic.gain_score(1.0) == 0.0
    assert diagnostic.gain_score(1.3) == 0.0  # an under-confident teacher's ratio above 1 is clipped
    assert math.isnan(diagnostic.noise_left(0.1, 0.0)) and math.isnan(diagnostic.gain_score(float("nan")))


def test_spearman_by_hand():
    assert diagnostic.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert diagnostic.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ranks x: 1, 2, 3; y: 1, 3, 2 -> d^2 = 0, 1, 1: 1 - 6 * 2 / (3 * 8) = 0.5.
    assert diagnostic.spearman([0.1, 0.5, 0.9], [5, 9, 7]) == pytest.approx(0.5)
    # Ties share their average rank: y ranks 1.5, 1.5, 3 against x ranks 1, 2, 3 -> Pearson 0.866.
    assert diagnostic.spearman([1, 2, 3], [7, 7, 9]) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(diagnostic.spearman([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError):
        diagnostic.spearman([1, 2], [1])


EVAL_BASELINE = {"student_auc": 0.70, "student_logloss": 0.45, "student_ece": 0.01, "student_mean_pq": 0.16,
                 "student_mean_p": 0.2}
EVAL_PFD = {"student_auc": 0.71, "student_logloss": 0.44, "student_ece": 0.02, "student_mean_pq": 0.15,
            "teacher_auc": 0.90, "teacher_logloss": 0.30, "teacher_ece": 0.03, "teacher_mean_pq": 0.08}


def test_teacher_diagnostic_of_one_seed():
    d = diagnostic.teacher_diagnostic(EVAL_PFD, EVAL_BASELINE)
    assert d["noise_left"] == pytest.approx(0.5) and d["gain_score"] == pytest.approx(0.25)
    assert d["auc_gap"] == pytest.approx(0.20)
    assert (d["teacher_mean_pq"], d["baseline_mean_pq"], d["student_mean_pq"]) == (0.08, 0.16, 0.15)
    assert (d["teacher_ece"], d["student_ece"], d["baseline_ece"], d["teacher_logloss"]) == (0.03, 0.02, 0.01, 0.30)
    mean = diagnostic.mean_diagnostic([d, dict(d, noise_left=0.7, gain_score=0.21)])
    assert mean["noise_left"] == pytest.approx(0.6) and mean["gain_score"] == pytest.approx(0.23)


def _run(tmp_path, mode, seed, evaluated):
    model_dir = tmp_path / f"{mode.value}-{seed}"
    model_dir.mkdir()
    (model_dir / "metrics.json").write_text(json.dumps({"eval": evaluated}))
    teacher = {"auc": evaluated["teacher_auc"]} if "teacher_auc" in evaluated else None
    return Run(Method(mode), 1.0, seed, {"auc": evaluated["student_auc"]}, teacher, 1.0, str(model_dir))


def test_of_runs_pairs_each_teacher_with_the_baseline_of_its_seed_and_the_report_shows_it(tmp_path):
    runs = [_run(tmp_path, Mode.BASELINE, 0, EVAL_BASELINE), _run(tmp_path, Mode.PFD, 0, EVAL_PFD),
            _run(tmp_path, Mode.BASELINE, 1, dict(EVAL_BASELINE, student_mean_pq=0.10)),
            _run(tmp_path, Mode.PFD, 1, EVAL_PFD),
            _run(tmp_path, Mode.MD, 0, {k: v for k, v in EVAL_PFD.items() if "pq" not in k})]  # no calibration
    out = diagnostic.of_runs(runs)
    assert [d["method"] for d in out] == ["pfd"]  # the baseline has no teacher; md's runs lack the keys
    assert out[0]["seeds"] == [0, 1]
    assert [d["noise_left"] for d in out[0]["per_seed"]] == pytest.approx([0.5, 0.8])
    assert out[0]["mean"]["gain_score"] == pytest.approx((0.25 + 0.16) / 2)
    rows = [{"method": "pfd", "paired_t_test": {"mean": 0.0123, "p": 0.04}}]
    text = report.diagnostic_markdown(out, rows)
    line = next(line for line in text.splitlines() if line.startswith("| pfd |"))
    assert line == "| pfd | +0.2000 | 0.0800 | 0.1300 | 0.650 | 0.205 | 0.3000 | 0.0300 | 0.0200 | +0.0123 |"
    assert report.diagnostic_markdown([], rows) == ""
