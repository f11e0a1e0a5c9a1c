"""A comparison's results: the Markdown tables, the JSON record and their summary numbers."""
from __future__ import annotations

import json
import math
import os
import statistics
from typing import Sequence

from pfd_tf.compare.methods import Method
from pfd_tf.compare.runs import Run
from pfd_tf.compare.stats import paired_t_test
from pfd_tf.config import Mode


def summarize(methods: Sequence[Method], rate_of: dict, tuning: Sequence[Run], runs: Sequence[Run],
              seeds: Sequence[int], config_lambda: float) -> list[dict]:
    """Per method: its rate, each network's held-out AUC and log loss over seeds, its per-seed
    student AUC difference from the baseline's and the paired t-test of those differences."""
    baseline = {r.seed: r for r in runs if r.method.mode is Mode.BASELINE and r.method.lambda_ is None}
    rows = []
    for method in methods:
        mine = {r.seed: r for r in runs if r.method == method}
        row = {"method": method.name, "mode": method.mode.value, "lambda": method.lambda_,
               "config_lambda": config_lambda,
               "learning_rate": rate_of[method.name],
               "validation_auc": _validation_auc(tuning, method, rate_of[method.name])}
        for who in ("student", "teacher"):
            for metric in ("auc", "logloss"):
                values = [getattr(mine[s], who)[metric] for s in seeds
                          if s in mine and getattr(mine[s], who) and metric in getattr(mine[s], who)]
                row[f"{who}_{metric}"] = values
        if method.mode is not Mode.BASELINE or method.lambda_ is not None:
            differences = [mine[s].student["auc"] - baseline[s].student["auc"] for s in seeds
                           if s in mine and s in baseline and _has_auc(mine[s]) and _has_auc(baseline[s])]
            row["auc_minus_baseline"] = differences
            row["paired_t_test"] = paired_t_test(differences) if differences else None
        rows.append(row)
    return rows


def _has_auc(run: Run) -> bool:
    return bool(run.student) and "auc" in run.student


def _validation_auc(tuning: Sequence[Run], method: Method, rate: float):
    for run in tuning:
        if run.method == method and run.learning_rate == rate and _has_auc(run):
            return run.student["auc"]
    return None


def mean_sd(values: Sequence[float], digits: int = 4) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(title: str, rows: Sequence[dict], tuning: Sequence[Run], rates: Sequence[float],
             seeds: Sequence[int]) -> str:
    """The report: results by method, the lambda sweep, and the validation AUCs the rates were chosen by."""
    lines = [f"# {title}", "",
             f"Held-out AUC and log loss, mean ± sd over seeds {', '.join(map(str, seeds))}; each method at the "
             "learning rate chosen on the validation split. Δ: the method's student AUC minus the baseline "
             "student's, seed by seed; p: two-sided paired t-test of those differences.", "",
             "| method | rate | student AUC | student log loss | teacher AUC | teacher log loss | Δ AUC per seed | mean Δ | p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        test = row.get("paired_t_test")
        per_seed = ", ".join(f"{d:+.4f}" for d in row.get("auc_minus_baseline", [])) or "-"
        mean_delta = f"{test['mean']:+.4f}" if test else "-"
        p = f"{test['p']:.3f}" if test and test.get("p") is not None else "-"
        lines.append(f"| {row['method']} | {row['learning_rate']:g} | {mean_sd(row['student_auc'])} | "
                     f"{mean_sd(row['student_logloss'])} | {mean_sd(row['teacher_auc'])} | "
                     f"{mean_sd(row['teacher_logloss'])} | {per_seed} | {mean_delta} | {p} |")
    sweep = lambda_rows(rows)
    if len(sweep) > 1:
        lines += ["", "Student AUC by PFD's lambda (each lambda at its own rate):", "",
                  "| lambda | " + " | ".join(f"{lam:g}" for lam, _ in sweep) + " |",
                  "|---" * (len(sweep) + 1) + "|",
                  "| student AUC | " + " | ".join(mean_sd(r["student_auc"]) for _, r in sweep) + " |",
                  "| rate | " + " | ".join(f"{r['learning_rate']:g}" for _, r in sweep) + " |"]
    lines += ["", "Validation student AUC by learning rate (the rate each method trains at is in bold):", "",
              "| method | " + " | ".join(f"{r:g}" for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for row in rows:
        cells = []
        for rate in rates:
            run = next((t for t in tuning if t.method.name == row["method"] and t.learning_rate == rate), None)
            cell = f"{run.student['auc']:.4f}" if run and _has_auc(run) else "-"
            cells.append(f"**{cell}**" if rate == row["learning_rate"] else cell)
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def lambda_rows(rows: Sequence[dict]) -> list[tuple[float, dict]]:
    """(lambda, row) of every PFD row, by lambda; the config's PFD run counts at the config's lambda."""
    out = [(row["lambda"] if row["lambda"] is not None else row["config_lambda"], row)
           for row in rows if row["mode"] == Mode.PFD.value]
    return sorted(out, key=lambda item: item[0])


def write_json(path: str, record: dict) -> None:
    """Writes `record` atomically (NaN, never valid JSON, as null)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_finite(record), f, indent=2)
    os.replace(tmp, path)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def diagnostic_markdown(diagnostics: Sequence[dict], rows: Sequence[dict]) -> str:
    """The section "What the teacher adds" (`pfd_tf.compare.diagnostic.of_runs`), each method's
    measured mean Δ AUC beside it; empty when no method has a teacher with calibration numbers."""
    if not diagnostics:
        return ""
    gain = {row["method"]: row.get("paired_t_test") for row in rows}
    lines = ["", "What the teacher adds (held-out rows, mean over seeds; `pfd_tf.compare.diagnostic`): the "
             "teacher's mean T(1 − T) against the baseline student's mean p(1 − p); noise left, their ratio: the "
             "share of the label noise the teacher does not explain, which its soft labels drop; score = noise "
             "left × (1 − noise left); the teacher's calibration (ECE over 20 equal-count bins).", "",
             "| method | teacher − baseline AUC | teacher T(1−T) | baseline p(1−p) | noise left | score | "
             "teacher log loss | teacher ECE | student ECE | measured mean Δ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for d in diagnostics:
        m, test = d["mean"], gain.get(d["method"])
        gap = f"{m['auc_gap']:+.4f}" if "auc_gap" in m else "-"
        measured = f"{test['mean']:+.4f}" if test else "-"
        lines.append(f"| {d['method']} | {gap} | {m['teacher_mean_pq']:.4f} | {m['baseline_mean_pq']:.4f} | "
                     f"{m['noise_left']:.3f} | {m['gain_score']:.3f} | {m['teacher_logloss']:.4f} | "
                     f"{m['teacher_ece']:.4f} | {m['student_ece']:.4f} | {measured} |")
    return "\n".join(lines) + "\n"
