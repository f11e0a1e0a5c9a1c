"""pfd-compare: its statistics, its methods, its validation split, and one comparison run as a user runs it.

The end-to-end test runs `pfd-compare` on a tiny synthetic world, kills it
(SIGKILL) a few runs in, starts it again to the end, then once more: the
second start must read back the runs that finished and redo the killed one,
the third must train nothing and write the same report.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.compare.methods import Method, methods_for, parse_floats, parse_modes
from pfd_tf.compare.split import validation_split
from pfd_tf.compare.stats import paired_t_test, t_two_sided_p
from pfd_tf.config import ConfigError, Mode
from pfd_tf.data.files import resolve_files
from pfd_tf.run_dir import LOCK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------
def test_two_sided_p_against_known_values():
    # df = 2 has a closed form: P(|T| >= t) = 1 - t / sqrt(t^2 + 2).
    assert t_two_sided_p(2.0, 2) == pytest.approx(1 - 2 / math.sqrt(6), abs=1e-10)
    # df = 1 (Cauchy): 1 - (2 / pi) atan(t).
    assert t_two_sided_p(3.0, 1) == pytest.approx(1 - 2 / math.pi * math.atan(3.0), abs=1e-10)
    # Table values of the 97.5% quantile.
    assert t_two_sided_p(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.776, 4) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.228, 10) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(-2.776, 4) == t_two_sided_p(2.776, 4)
    assert t_two_sided_p(0.0, 3) == 1.0


def test_paired_t_test_by_hand():
    result = paired_t_test([0.01, 0.02, 0.03])
    t = 0.02 / (0.01 / math.sqrt(3))
    assert result["n"] == 3
    assert result["mean"] == pytest.approx(0.02) and result["sd"] == pytest.approx(0.01)
    assert result["t"] == pytest.approx(t)
    assert result["p"] == pytest.approx(1 - t / math.sqrt(t * t + 2), abs=1e-10)
    assert paired_t_test([-0.01, -0.02, -0.03])["t"] == pytest.approx(-t)


def test_paired_t_test_with_too_few_seeds_or_no_spread():
    one = paired_t_test([0.004])
    assert one == {"n": 1, "mean": 0.004, "sd": None, "t": None, "p": None}
    assert math.isnan(paired_t_test([])["mean"]) and paired_t_test([])["p"] is None
    same = paired_t_test([0.01, 0.01, 0.01])
    assert same["sd"] == 0.0 and same["t"] is None and same["p"] == 0.0
    assert paired_t_test([0.0, 0.0])["p"] == 1.0


# --------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------
def _config(privileged: bool = True, lambda_: float = 0.5):
    features = [{"name": "user_id", "kind": "categorical", "hash_buckets": 10, "dim": 2}]
    if privileged:
        features.append({"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 2,
                         "role": "privileged"})
    return config_lib.from_dict({
        "data": {"train_files": ["t.csv"], "eval_files": ["e.csv"], "label": "y"}, "features": features,
        "distill": {"mode": "pfd" if privileged else "md", "lambda": lambda_}, "train": {"steps": 10}})


def test_default_modes_are_what_the_config_can_train():
    assert parse_modes("", _config(privileged=False)) == [Mode.BASELINE, Mode.MD]
    assert parse_modes("", _config()) == [m for m in Mode if m is not Mode.TEACHERS]  # no teachers: list


def test_a_teachers_list_is_compared_as_it_is_against_the_baseline():
    raw = _config(privileged=False).to_dict()
    raw["distill"].pop("mode")
    raw["teachers"] = [{"name": "fm", "model": "fm"}]
    config = config_lib.from_dict(raw)
    assert parse_modes("", config) == [Mode.BASELINE, Mode.MD, Mode.TEACHERS]
    assert Method(Mode.TEACHERS).overrides() == []  # the config's own list, untouched
    with pytest.raises(ConfigError, match=r"--modes: teachers trains the config's teachers: list"):
        parse_modes("teachers", _config())


def test_named_modes_always_include_the_baseline_once():
    assert parse_modes("pfd", _config()) == [Mode.BASELINE, Mode.PFD]
    assert parse_modes(" md , pfd,md ", _config()) == [Mode.BASELINE, Mode.MD, Mode.PFD]
    modes = parse_modes("pfd,baseline,pfd", _config())
    assert sorted(modes) == sorted([Mode.BASELINE, Mode.PFD])
    with pytest.raises(ConfigError, match=r"^--modes: unknown mode 'bogus' \(choose from: baseline, lupi"):
        parse_modes("pfd,bogus", _config())
    with pytest.raises(ConfigError, match=r"^--modes: lupi needs a feature with role: privileged"):
        parse_modes("lupi", _config(privileged=False))


def test_lambda_sweep_adds_pfd_runs_without_repeating_the_configs_lambda():
    config = _config(lambda_=0.5)
    methods = methods_for([Mode.BASELINE, Mode.PFD], [0.3, 0.5, 0.7], config)
    assert methods == [Method(Mode.BASELINE), Method(Mode.PFD), Method(Mode.PFD, 0.3), Method(Mode.PFD, 0.7)]
    assert [m.name for m in methods] == ["baseline", "pfd", "pfd λ=0.3", "pfd λ=0.7"]
    assert [m.slug for m in methods] == ["baseline", "pfd", "pfd-lambda0.3", "pfd-lambda0.7"]
    assert methods[2].overrides() == ["distill.mode=pfd", "distill.lambda=0.3"]
    # A sweep without pfd among the modes still has the config's PFD run to compare its lambdas with.
    assert methods_for([Mode.BASELINE], [0.3], config) == [Method(Mode.BASELINE), Method(Mode.PFD),
                                                          Method(Mode.PFD, 0.3)]
    assert methods_for([Mode.BASELINE, Mode.MD], [], config) == [Method(Mode.BASELINE), Method(Mode.MD)]
    with pytest.raises(ConfigError, match=r"^--lambdas: 1.5 is not in \[0, 1\]"):
        methods_for([Mode.BASELINE], [0.3, 1.5], config)
    with pytest.raises(ConfigError, match=r"^--lambdas: a PFD lambda sweep needs a feature with role: privileged"):
        methods_for([Mode.BASELINE], [0.3], _config(privileged=False))
    with pytest.raises(ConfigError, match=r"^--lambdas: 'x' is not a number"):
        parse_floats("0.1, x", "--lambdas")
    assert parse_floats(" 0.1, ,0.2 ", "--rates") == [0.1, 0.2]


# --------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------
def _split_world(tmp_path, train_days=3, **data):
    for day in range(train_days + 1):
        folder = tmp_path / ("test" if day == train_days else "train")
        folder.mkdir(exist_ok=True)
        (folder / f"day-{day:02d}.csv").write_text("user_id,y\n1,0\n2,1\n")
    raw = {"data": {"train_files": ["train/*.csv"], "eval_files": ["test/*.csv"], "label": "y", **data},
           "features": [{"name": "user_id", "kind": "categorical", "hash_buckets": 10, "dim": 2}],
           "distill": {"mode": "baseline"}, "train": {"steps": 10}}
    return config_lib.from_dict(raw, str(tmp_path))


def test_validation_split_holds_out_the_last_training_file(tmp_path):
    split = validation_split(_split_world(tmp_path))
    day = lambda d: str(tmp_path / "train" / f"day-{d:02d}.csv")  # noqa: E731
    real = lambda paths: [os.path.realpath(p) for p in paths]  # noqa: E731
    assert real(split.data.train_files) == real([day(0), day(1)])
    assert real(split.data.eval_files) == real([day(2)])


def test_validation_split_honours_validation_files(tmp_path):
    split = validation_split(_split_world(tmp_path, validation_files=["train/day-00.csv"]))
    assert [os.path.basename(p) for p in split.data.train_files] == ["day-01.csv", "day-02.csv"]
    assert [os.path.basename(p) for p in split.data.eval_files] == ["day-00.csv"]


def test_validation_split_refusals(tmp_path):
    (tmp_path / "one").mkdir()
    with pytest.raises(ConfigError, match=r"^data\.validation_files: the training files are one file"):
        validation_split(_split_world(tmp_path / "one", train_days=1))
    held_out = r"^data\.validation_files: .*day-03\.csv is a held-out file \(data\.eval_files\)"
    with pytest.raises(ConfigError, match=held_out):
        validation_split(_split_world(tmp_path, validation_files=["test/*.csv"]))
    with pytest.raises(ConfigError, match=r"^data\.validation_files: they are every training file"):
        validation_split(_split_world(tmp_path, validation_files=["train/*.csv"]))


@pytest.mark.parametrize("validation", ["./test/day-03.csv", "./train/day-02.csv"])
def test_validation_split_sees_a_file_however_it_is_spelled(tmp_path, validation):
    try:
        split = validation_split(_split_world(tmp_path, validation_files=[validation]))
    except ConfigError:
        return  # ./test/day-03.csv: refused as the held-out file
    train = {os.path.realpath(p) for p in split.data.train_files}
    assert not train & {os.path.realpath(p) for p in split.data.eval_files}, "validated on a training file"
    assert "test" not in validation, "validated on the held-out file"


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
            "--modes", modes, "--lambdas", "0.3", "--seeds", "0,1", "--rates", "0.05,0.1",
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
    # 3 methods (baseline, pfd at the config's lambda 0.5, pfd at 0.3) x (2 rates + 2 seeds)
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
    assert record["rates"] == [0.05, 0.1] and record["seeds"] == [0, 1]
    assert len(record["validation_runs"]) == 6 and len(record["runs"]) == 6

    # Each method's rate is the argmax of its validation student AUCs.
    for method in methods:
        tuning = {r["learning_rate"]: r["student"]["auc"] for r in record["validation_runs"] if r["method"] == method}
        assert set(tuning) == {0.05, 0.1}
        assert record["chosen_rates"][method] == max(tuning, key=tuning.get)
        row = next(r for r in record["summary"] if r["method"] == method)
        assert row["learning_rate"] == record["chosen_rates"][method]
        assert row["validation_auc"] == tuning[row["learning_rate"]]

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
        assert row["paired_t_test"] == pytest.approx(paired_t_test(expected))
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
