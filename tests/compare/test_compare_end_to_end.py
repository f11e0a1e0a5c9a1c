"""pfd-compare end to end, as a user runs it: on a tiny synthetic world, killed (SIGKILL) a few runs in, started
again to the end, then once more: the second start must read back the runs that finished and redo the killed
one, the third must train nothing and write the same report (the rest of pfd-compare: `test_compare.py`).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.compare.stats import paired_t_test
from pfd_tf.data.files import resolve_files
from pfd_tf.run_dir import LOCK

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------
# pfd-compare, end to end
# --------------------------------------------------------------------------
def _env():
    return {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """`pfd-data --scenario cvr --seed 7 --rows 4000`: seven training days and a held-out day."""
    out = str(tmp_path_factory.mktemp("cvr") / "data")
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.data", "--scenario", "cvr", "--seed", "7",
                           "--rows", "4000", "--out", out], capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return os.path.join(out, "config.yaml")


def _compare_args(config, out, modes="baseline,pfd"):
    return [sys.executable, "-m", "pfd_tf.cli.compare", "--config", config, "--out", out,
            "--modes", modes, "--lambdas", "0.3", "--seeds", "0,1", "--rates", "0.1", "--normalizations", "none,layer",
            "--set", "train.epochs=1", "--set", "model.student_tower=[16,8]", "--set", "model.teacher_tower=[16,8]",
            "--set", "model.big_teacher_tower=[16,8]", "--set", "train.batch_size=256"]


def _run_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("validation ", "seed "))]


def _start_and_kill_after(args, lines_wanted: int) -> list[str]:
    """Runs `args` until `lines_wanted` run lines have appeared on its stdout, then SIGKILLs it."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    seen = []
    try:
        for line in proc.stdout:
            if line.startswith(("validation ", "seed ")):
                seen.append(line.rstrip("\n"))
                if len(seen) == lines_wanted:
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert len(seen) == lines_wanted, f"pfd-compare ended after {seen}"
    assert proc.returncode == -signal.SIGKILL
    return seen


def test_pfd_compare_end_to_end_killed_resumed_and_read_back(world, tmp_path):
    out = str(tmp_path / "compare")
    args = _compare_args(world, out)
    before_kill = _start_and_kill_after(args, 2)
    assert all(line.startswith("validation  baseline  lr ") for line in before_kill)

    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = _run_lines(proc.stdout)
    # 3 methods (baseline, pfd at the config's lambda 0.5, pfd at 0.3) x (2 grid points + 2 seeds)
    assert len(lines) == 12
    assert [line.split(":")[0] for line in lines[:2]] == [line.split(":")[0] for line in before_kill]
    assert all(line.endswith("(finished before)") for line in lines[:2]), lines
    assert not any(line.endswith("(finished before)") for line in lines[3:]), lines  # the 3rd: killed in flight
    # The runs that finished before the kill report what they reported then.
    assert [line.split("  (")[0] for line in lines[:2]] == [line.split("  (")[0] for line in before_kill]

    for name in ("compare.md", "compare.json", "compare.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "compare.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "compare.json"), encoding="utf-8") as f:
        record = json.load(f)
    _check_record(record)
    with open(os.path.join(out, "compare.md"), encoding="utf-8") as f:
        markdown = f.read()
    assert all(f"| {row['method']} |" in markdown for row in record["summary"])
    # What the teacher adds, beside the measured gain: every method with a teacher, on every seed.
    assert [(d["method"], d["seeds"]) for d in record["diagnostic"]] == [("pfd", [0, 1]), ("pfd λ=0.3", [0, 1])]
    assert "What the teacher adds" in markdown and "| pfd λ=0.3 | " in markdown.split("What the teacher adds")[1]

    # Started once more: nothing trains, the same report.
    again = subprocess.run(args, capture_output=True, text=True, timeout=600, env=_env())
    assert again.returncode == 0, again.stderr[-3000:]
    lines = _run_lines(again.stdout)
    assert len(lines) == 12 and all(line.endswith("(finished before)") for line in lines), lines
    with open(os.path.join(out, "compare.json"), encoding="utf-8") as f:
        reread = json.load(f)
    assert {k: v for k, v in reread.items() if k != "wall_seconds"} == \
        {k: v for k, v in record.items() if k != "wall_seconds"}


def _check_record(record: dict) -> None:
    methods = ["baseline", "pfd", "pfd λ=0.3"]
    assert [row["method"] for row in record["summary"]] == methods
    assert record["grid"] == {"train.learning_rate": [0.1], "model.normalization": ["none", "layer"]}
    assert record["rates"] == [0.1] and record["seeds"] == [0, 1]
    assert len(record["validation_runs"]) == 6 and len(record["runs"]) == 6

    # Every method tries every grid point; each keeps the argmax of its validation student AUCs.
    for method in methods:
        tuning = {r["grid_point"]["model.normalization"]: r["student"]["auc"]
                  for r in record["validation_runs"] if r["method"] == method}
        assert set(tuning) == {"none", "layer"}
        best = max(tuning, key=tuning.get)
        assert record["chosen"][method] == {"train.learning_rate": 0.1, "model.normalization": best}
        row = next(r for r in record["summary"] if r["method"] == method)
        assert row["grid_point"] == record["chosen"][method] and row["learning_rate"] == 0.1
        assert row["validation_auc"] == tuning[best]
        for run in (r for r in record["runs"] if r["method"] == method):
            saved = config_lib.load(os.path.join(run["model_dir"], "config.yaml"))
            assert saved.model.normalization.value == best

    # Each run's console is in its train.log: its progress lines, none of them on pfd-compare's.
    for run in record["validation_runs"] + record["runs"]:
        with open(os.path.join(run["model_dir"], "train.log"), encoding="utf-8") as f:
            assert re.search(r"^step (\d+)/\1  epoch ", f.read(), re.MULTILINE), run["model_dir"]  # the last step

    # Each method's per-seed difference is its run's AUC minus the baseline run's, seed by seed.
    auc = {(r["method"], r["seed"]): r["student"]["auc"] for r in record["runs"]}
    assert {r["learning_rate"] for r in record["runs"] if r["method"] == "pfd"} == {record["chosen_rates"]["pfd"]}
    for row in record["summary"]:
        assert row["student_auc"] == [auc[(row["method"], s)] for s in (0, 1)]
        if row["method"] == "baseline":
            assert "auc_minus_baseline" not in row
            continue
        expected = [auc[(row["method"], s)] - auc[("baseline", s)] for s in (0, 1)]
        assert row["auc_minus_baseline"] == pytest.approx(expected, abs=1e-12)
        test, by_hand = dict(row["paired_t_test"]), paired_t_test(expected)
        assert test.pop("ci95") == pytest.approx(by_hand.pop("ci95"))
        assert test == pytest.approx(by_hand)
        assert len(row["teacher_auc"]) == 2  # pfd runs have a teacher
    assert next(r for r in record["summary"] if r["method"] == "baseline")["teacher_auc"] == []

    # Validation runs train on days 0-5, evaluate on day 6, and export nothing; evaluation runs do export.
    for run in record["validation_runs"]:
        assert "/runs/validation/" in run["model_dir"]
        assert not os.path.exists(os.path.join(run["model_dir"], LOCK))  # the killed run's stale lock went too
        assert not os.path.exists(os.path.join(run["model_dir"], "export"))
        saved = config_lib.load(os.path.join(run["model_dir"], "config.yaml")).data
        assert [os.path.basename(p) for p in saved.eval_files] == ["day-06.csv"]
        assert [os.path.basename(p) for p in saved.train_files] == [f"day-{d:02d}.csv" for d in range(6)]
        assert run["seed"] == record["tune_seed"] == 7  # the config's train.seed
    for run in record["runs"]:
        assert f"/runs/seed{run['seed']}/" in run["model_dir"]
        assert os.path.exists(os.path.join(run["model_dir"], "export", "student", "saved_model.pb"))
        saved = config_lib.load(os.path.join(run["model_dir"], "config.yaml"))
        assert [os.path.basename(p) for p in resolve_files(saved, "eval_files")] == ["day-07.csv"]
        assert len(resolve_files(saved, "train_files")) == 7
        assert saved.train.seed == run["seed"] and saved.train.learning_rate == run["learning_rate"]
        assert saved.distill.lambda_ == (0.3 if run["method"] == "pfd λ=0.3" else 0.5)


def test_pfd_compare_refuses_an_unknown_mode(world, tmp_path):
    out = tmp_path / "compare"
    proc = subprocess.run(_compare_args(world, str(out), modes="bogus"),
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "pfd-compare: error: --modes: unknown mode 'bogus'" in proc.stderr
    assert not (out / "runs").exists()
