"""What a teacher adds, estimated from the runs a comparison already makes (no extra training).

The hypothesis it reads (issue 20; Section 4 of the PFD paper for the teacher
T = f(X, X*)): for a calibrated teacher T = E[y | x, x*] and p = P(y | x),

    Var(T | x) = p (1 - p) - E[Var(y | x, x*) | x],     E[Var(y | x, x*)] = E[T (1 - T)],

so the soft label drops the share ``noise_left`` = E[T(1 - T)] / E[p(1 - p)] of
the hard label's noise and keeps the rest, 1 - noise_left, which is what
the teacher knows beyond x.  At noise_left = 0 (x* determines y) the soft
label is the hard label; at 1 (x* knows nothing) it is the student's own
estimate.  ``gain_score`` = noise_left (1 - noise_left), the product of what
soft labels remove and what the teacher knows beyond the student, is a
heuristic of the hypothesis' shape: zero at both ends, largest at 1/2.  It is
not derived from a model of training: a teacher learned from the same rows
carries its own estimation error into the soft labels, which the formula
above leaves out.

Estimated on the held-out rows: E[T(1 - T)] from the method's teacher
(`<who>_mean_pq` of `pfd_tf.evaluation.calibration`), E[p(1 - p)] from the
baseline's student on the same seed.  Both are predicted variances, so they
mean what the formula says only for calibrated networks: the teacher's log
loss and expected calibration error (``ece``) are shown beside them, and an
over-confident teacher (large ece) makes noise_left too small.
"""
from __future__ import annotations

import json
import math
import os
import statistics
from typing import Mapping, Sequence


def noise_left(teacher_mean_pq: float, student_mean_pq: float) -> float:
    """E[T(1 - T)] / E[p(1 - p)]: the share of the label noise the teacher still predicts."""
    return teacher_mean_pq / student_mean_pq if student_mean_pq > 0 else float("nan")


def gain_score(left: float) -> float:
    """noise_left (1 - noise_left), noise_left clipped to [0, 1] (an uncalibrated teacher can exceed 1)."""
    if math.isnan(left):
        return float("nan")
    left = min(max(left, 0.0), 1.0)
    return left * (1.0 - left)


def teacher_diagnostic(method_eval: Mapping[str, float], baseline_eval: Mapping[str, float],
                       teacher: str = "teacher") -> dict[str, float]:
    """The diagnostic of one seed: `method_eval` and `baseline_eval` are the Evaluator's results
    (metrics.json's ``eval``) of the method's run and of the baseline's run on the same seed."""
    t_pq, s_pq = method_eval[f"{teacher}_mean_pq"], baseline_eval["student_mean_pq"]
    left = noise_left(t_pq, s_pq)
    out = {"teacher_mean_pq": t_pq, "baseline_mean_pq": s_pq, "student_mean_pq": method_eval["student_mean_pq"],
           "noise_left": left, "gain_score": gain_score(left),
           "teacher_logloss": method_eval[f"{teacher}_logloss"], "teacher_ece": method_eval[f"{teacher}_ece"],
           "student_ece": method_eval["student_ece"], "baseline_ece": baseline_eval["student_ece"]}
    if f"{teacher}_auc" in method_eval and "student_auc" in baseline_eval:
        out["auc_gap"] = method_eval[f"{teacher}_auc"] - baseline_eval["student_auc"]
    return out


def mean_diagnostic(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each key's mean over the seeds that have it."""
    keys = dict.fromkeys(k for d in per_seed for k in d)
    return {k: statistics.fmean([d[k] for d in per_seed if k in d]) for k in keys}


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's of the ranks, ties given their average rank.
    NaN with fewer than 2 pairs or a constant side."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    rx, ry = _ranks(xs), _ranks(ys)
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            ranks[k] = (i + j) / 2.0 + 1.0  # the average of the 1-based ranks i+1 .. j+1
        i = j + 1
    return ranks


def read_eval(model_dir: str) -> dict:
    """The Evaluator's results a finished run wrote (``metrics.json``'s ``eval``)."""
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)["eval"]


def of_runs(runs: Sequence) -> list[dict]:
    """Per method with a teacher: its diagnostic per seed against the baseline of that seed, and the mean.

    `runs` are `pfd_tf.compare.runs.Run`s of the evaluation seeds; a method whose runs lack the
    calibration keys (written before the Evaluator had them) is left out.
    """
    baseline = {r.seed: r for r in runs if r.method.mode.value == "baseline" and r.method.lambda_ is None}
    by_method: dict[str, list] = {}
    for run in runs:
        if run.teacher and run.seed in baseline and run.method.mode.value != "baseline":
            by_method.setdefault(run.method.name, []).append(run)
    out = []
    for name, mine in by_method.items():
        try:
            per_seed = [teacher_diagnostic(read_eval(r.model_dir), read_eval(baseline[r.seed].model_dir))
                        for r in mine]
        except (KeyError, OSError):
            continue
        out.append({"method": name, "seeds": [r.seed for r in mine], "per_seed": per_seed,
                    "mean": mean_diagnostic(per_seed)})
    return out
