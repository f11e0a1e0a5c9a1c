"""A comparison's results: the Markdown tables, the JSON record and their summary numbers."""
from __future__ import annotations

import json
import math
import os
import statistics
from typing import Mapping, Sequence

from pfd_tf.compare.grid import LEARNING_RATE, Grid, GridPoint
from pfd_tf.compare.methods import Method
from pfd_tf.compare.runs import Run
from pfd_tf.compare.stats import paired_t_test
from pfd_tf.config import Mode


def summarize(methods: Sequence[Method], chosen: Mapping[str, GridPoint | None], tuning: Sequence[Run],
              runs: Sequence[Run], seeds: Sequence[int], config_lambda: float) -> list[dict]:
    """Per method: its chosen grid point, each network's held-out AUC and log loss over the seeds whose run
    trained, its per-seed student AUC difference from the baseline's (seeds where neither diverged) and the
    paired t-test of those differences (with how many seeds it uses)."""
    baseline = {r.seed: r for r in runs if r.method.mode is Mode.BASELINE and r.method.lambda_ is None}
    rows = []
    for method in methods:
        mine = {r.seed: r for r in runs if r.method == method}
        point = chosen.get(method.name)
        row = {"method": method.name, "mode": method.mode.value, "lambda": method.lambda_,
               "config_lambda": config_lambda, "diverged": point is None,
               "grid_point": point.as_dict() if point else None, "grid_label": point.label if point else None,
               "learning_rate": point.value(LEARNING_RATE) if point else None,
               "validation_auc": _validation_auc(tuning, method, point),
               "diverged_seeds": [s for s in seeds if s in mine and mine[s].diverged]}
        for who in ("student", "teacher"):
            for metric in ("auc", "logloss"):
                values = [getattr(mine[s], who)[metric] for s in seeds
                          if s in mine and getattr(mine[s], who) and metric in getattr(mine[s], who)]
                row[f"{who}_{metric}"] = values
        if method.mode is not Mode.BASELINE or method.lambda_ is not None:
            paired = [s for s in seeds if s in mine and s in baseline and _has_auc(mine[s]) and _has_auc(baseline[s])]
            differences = [mine[s].student["auc"] - baseline[s].student["auc"] for s in paired]
            row["paired_seeds"] = paired
            row["auc_minus_baseline"] = differences
            row["paired_t_test"] = paired_t_test(differences) if differences else None
        rows.append(row)
    return rows


def _has_auc(run: Run) -> bool:
    return not run.diverged and bool(run.student) and "auc" in run.student


def _validation_auc(tuning: Sequence[Run], method: Method, point: GridPoint | None):
    for run in tuning:
        if run.method == method and run.point == point and _has_auc(run):
            return run.student["auc"]
    return None


def mean_sd(values: Sequence[float], digits: int = 4) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(title: str, rows: Sequence[dict], tuning: Sequence[Run], grid: Grid, seeds: Sequence[int],
             notes: Sequence[str] = ()) -> str:
    """The report: one section after another (a new section is one function and one line here)."""
    sections = [results_section(title, rows, grid, seeds), lambda_section(rows), grid_section(rows, tuning, grid),
                notes_section(notes)]
    return "\n\n".join(s for s in sections if s) + "\n"


def results_section(title: str, rows: Sequence[dict], grid: Grid, seeds: Sequence[int]) -> str:
    """Results by method: the grid point each trains at, AUC and log loss, Δ per seed, mean Δ with its CI, p."""
    lines = [f"# {title}", "",
             f"Held-out AUC and log loss, mean ± sd over seeds {', '.join(map(str, seeds))}; each method at the "
             f"grid point ({', '.join(a.key for a in grid.axes)}) chosen by its validation student AUC. "
             "Δ: the method's student AUC minus the baseline student's, seed by seed (a seed where either "
             "diverged is left out: n says how many seeds remain); 95% CI: t-based, of the mean Δ; "
             "p: two-sided paired t-test of those differences.", "",
             "| method | chosen on validation | student AUC | student log loss | teacher AUC | teacher log loss "
             "| Δ AUC per seed | mean Δ [95% CI] | n | p |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    baseline = next((r for r in rows if r["mode"] == Mode.BASELINE.value and r["lambda"] is None), None)
    for row in rows:
        if row["diverged"]:
            lines.append(f"| {row['method']} | diverged at every grid point | - | - | - | - | - | - | - | - |")
            continue
        test = row.get("paired_t_test")
        per_seed = "-"
        if "auc_minus_baseline" in row:
            by_seed = dict(zip(row["paired_seeds"], row["auc_minus_baseline"]))
            per_seed = ", ".join(_seed_cell(s, by_seed, row, baseline) for s in seeds)
        elif row["diverged_seeds"]:
            per_seed = ", ".join(f"seed {s} diverged" for s in row["diverged_seeds"])
        mean_delta = "-"
        if test:
            ci = f" [{test['ci95'][0]:+.4f}, {test['ci95'][1]:+.4f}]" if test.get("ci95") else ""
            mean_delta = f"{test['mean']:+.4f}{ci}"
        n = f"{test['n']} of {len(seeds)}" if test else "-"
        p = f"{test['p']:.3f}" if test and test.get("p") is not None else "-"
        lines.append(f"| {row['method']} | {row['grid_label']} | {mean_sd(row['student_auc'])} | "
                     f"{mean_sd(row['student_logloss'])} | {mean_sd(row['teacher_auc'])} | "
                     f"{mean_sd(row['teacher_logloss'])} | {per_seed} | {mean_delta} | {n} | {p} |")
    return "\n".join(lines)


def _seed_cell(seed: int, by_seed: Mapping[int, float], row: dict, baseline: dict | None) -> str:
    if seed in by_seed:
        return f"{by_seed[seed]:+.4f}"
    if seed in row["diverged_seeds"]:
        return "diverged"
    if baseline and seed in baseline["diverged_seeds"]:
        return "baseline diverged"
    return "-"


def lambda_section(rows: Sequence[dict]) -> str:
    sweep = [(lam, r) for lam, r in lambda_rows(rows) if not r["diverged"]]
    if len(sweep) < 2:
        return ""
    return "\n".join(["Student AUC by PFD's lambda (each lambda at its own grid point):", "",
                      "| lambda | " + " | ".join(f"{lam:g}" for lam, _ in sweep) + " |",
                      "|---" * (len(sweep) + 1) + "|",
                      "| student AUC | " + " | ".join(mean_sd(r["student_auc"]) for _, r in sweep) + " |",
                      "| chosen | " + " | ".join(r["grid_label"] for _, r in sweep) + " |"])


def grid_section(rows: Sequence[dict], tuning: Sequence[Run], grid: Grid) -> str:
    """Validation student AUC of every method at every grid point; the chosen one in bold."""
    names = [row["method"] for row in rows]
    lines = ["Validation student AUC by grid point (the point each method trains at is in bold):", "",
             "| grid point | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    chosen = {row["method"]: row["grid_label"] for row in rows}
    for point in grid.points():
        cells = []
        for name in names:
            run = next((t for t in tuning if t.method.name == name and t.point == point), None)
            cell = "diverged" if run and run.diverged else f"{run.student['auc']:.4f}" if run and _has_auc(run) else "-"
            cells.append(f"**{cell}**" if point.label == chosen[name] else cell)
        lines.append(f"| {point.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes_section(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return "\n".join(["Best values at the grid's edge (a wider grid may find better ones):", ""] +
                     [f"- {note}" for note in notes])


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
