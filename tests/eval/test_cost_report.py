"""pfd-report on a real run: the exported DAGFM student and its DCN-v2 teacher, rebuilt from the checkpoint.

One tiny run (a DAGFM student with two propagation layers over 5 fields of
dim 4, a co-trained DCN-v2 teacher on every feature), trained and exported
by `pfd_tf.trainer.train` as pfd-train does, then `python -m
pfd_tf.cli.report` as a user runs it (about 40 s together: the only way to
check the teacher is rebuilt from what a run leaves).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf._keras import tf
from pfd_tf.cost_report import REPORT, ReportError, latency, report
from pfd_tf.features import vocabulary_size
from conftest import write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EQUAL_DIMS = [f"features.{name}.dim=4" for name in ("device", "price", "tags", "dwell", "cart")]
FIELDS, DIM, DEPTH = 5, 4, 2  # the student's features: user_id, item_id, device, price, tags


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from pfd_tf.trainer import train

    directory = tmp_path_factory.mktemp("cost")
    config = config_lib.load(write_tiny_world(str(directory)), EQUAL_DIMS + [
        "teachers=[{name: dcn, model: dcn_v2, features: all, cross_layers: 2, cross_rank: 4}]",
        "student.model=dagfm", f"student.dagfm_layers={DEPTH}"])
    model_dir = str(directory / "run")
    train(config, model_dir, verbose=0)
    return config, model_dir


def _report(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pfd_tf.cli.report", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def _tables(config, features) -> int:
    return sum(vocabulary_size(spec) * spec.dim for spec in features)


def test_the_report_has_the_student_and_its_teacher_with_the_ratio(run):
    config, model_dir = run
    proc = _report(model_dir, "--repeats=2", "--warmup=1", "--batch_sizes=1,16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "teacher/dcn / student: params" in proc.stdout and f"written: {os.path.join(model_dir, REPORT)}" in proc.stdout
    results = json.load(open(os.path.join(model_dir, REPORT)))
    student, teacher = results["models"]["student"], results["models"]["teacher/dcn"]
    assert (student["kind"], teacher["kind"]) == ("export", "teacher") and set(results["models"]) == {"student", "teacher/dcn"}

    # The student: its tables, and DAGFM's C (m^2), p_k (K m^2 d) and logit ((K + 1) m + 1).
    other = FIELDS**2 + DEPTH * FIELDS**2 * DIM + (DEPTH + 1) * FIELDS + 1
    assert student["params"] == {"embedding": _tables(config, config.student_features), "other": other,
                                 "total": _tables(config, config.student_features) + other}
    # The teacher reads every feature (the privileged ones too), on tables of the same sizes.
    assert teacher["params"]["embedding"] == _tables(config, config.features)
    assert teacher["params"]["other"] > 0

    flops = student["flops"]
    # Each layer's messages: a [1, m] x [m, m] product per embedding coordinate; h0 = C e one [m, m] x [m, d]
    # product and the logit, MatMuls.
    assert flops["by_op"]["BatchMatMulV2"] == DEPTH * 2 * FIELDS**2 * DIM
    assert flops["by_op"]["MatMul"] == 2 * FIELDS**2 * DIM + 2 * (DEPTH + 1) * FIELDS
    assert flops["per_call"] == DEPTH * FIELDS**2 * DIM and flops["uncounted"] == {}
    assert teacher["flops"]["per_example"] > 0 and teacher["flops"]["uncounted"] == {}
    ratio = results["ratios"]["teacher/dcn / student"]
    assert ratio["flops_per_example"] == pytest.approx(teacher["flops"]["per_example"] / flops["per_example"])
    assert ratio["params"] == pytest.approx(teacher["params"]["total"] / student["params"]["total"])
    for cost in (student, teacher):
        assert sorted(cost["latency"], key=int) == ["1", "16"]
        assert all(t["calls"] == 2 and t["warmup"] == 1 and t["ms_per_example"] > 0 for t in cost["latency"].values())
    assert set(ratio) == {"params", "flops_per_example", "latency_1", "latency_16"}


def test_the_teacher_is_served_like_the_student_and_timed_beside_it(run, monkeypatch):
    """Both go through the `serving_default` signature of a SavedModel loaded from disk (the teacher's saved
    for the report in a temporary directory, not in the run), and one `latency` call times them together."""
    from pfd_tf import cost_report

    config, model_dir = run
    loaded, timed = [], []
    load_export, latency = cost_report.load_export, cost_report.latency

    def spy_load(path, source=None):
        loaded.append(path)
        return load_export(path, source)

    def spy_latency(calls, *args):
        timed.append(dict(calls))
        return latency(calls, *args)

    monkeypatch.setattr(cost_report, "load_export", spy_load)
    monkeypatch.setattr(cost_report, "latency", spy_latency)
    results = report(model_dir, batches=(4,), warmup=1, repeats=2)
    assert len(timed) == 1 and set(timed[0]) == {"student", "teacher/dcn"}
    assert loaded[0] == os.path.join(model_dir, "export", "student") and len(loaded) == 2
    assert os.path.basename(loaded[1]) == "dcn" and not os.path.exists(loaded[1])  # saved, loaded, cleaned up
    assert not loaded[1].startswith(model_dir) and sorted(os.listdir(os.path.join(model_dir, "export"))) == ["student"]
    student, teacher = (timed[0][name][0] for name in ("student", "teacher/dcn"))
    assert type(student) is type(teacher) is cost_report.Served
    assert type(student.function) is type(teacher.function)  # one kind of callable: a loaded signature
    assert set(results["ratios"]["teacher/dcn / student"]) == {"params", "flops_per_example", "latency_4"}


def test_latency_times_the_models_side_by_side_in_rotating_rounds():
    order = []
    spec = {"c": tf.TensorSpec([None], tf.string, name="c")}

    def call(name):
        return lambda batch: order.append(name) or {"rows": tf.shape(batch["c"])[0]}

    timings = latency({name: (call(name), spec) for name in "abc"}, batches=(1, 3), warmup=1, repeats=3)
    # At each batch size: one warm-up call each, then rounds abc, bca, cab.
    assert order == list("abc" + "abcbcacab") * 2
    assert {name: sorted(t) for name, t in timings.items()} == {name: ["1", "3"] for name in "abc"}
    assert all(t["calls"] == 3 and t["warmup"] == 1 for by_batch in timings.values() for t in by_batch.values())


def test_what_cannot_be_measured_is_refused_before_anything_is_written(run, tmp_path):
    config, model_dir = run
    proc = _report(str(tmp_path / "nothing"), timeout=60)
    assert proc.returncode == 2 and "config.yaml: missing; MODEL_DIR must be a directory pfd-train" in proc.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.yaml", "config.fingerprint.json"):
        shutil.copy(os.path.join(model_dir, name), bare / name)
    with pytest.raises(ReportError, match="no SavedModel under .* and no teacher measured"):
        report(str(bare), teachers=False)
    with pytest.raises(ReportError, match="no checkpoint to rebuild the teachers from"):
        report(str(bare))
    assert sorted(os.listdir(bare)) == ["config.fingerprint.json", "config.yaml"]


def test_train_cost_report_measures_at_the_end_of_the_run(tmp_path, capsys):
    """`train.cost_report: true`: pfd-train's run ends with what pfd-report measures, printed and in
    cost_report.json (the tiny world's default PFD: an MLP teacher and student)."""
    from pfd_tf.cli.train import run_task

    config = write_tiny_world(str(tmp_path))
    model_dir = str(tmp_path / "run")
    assert run_task(config, model_dir, ["train.steps=6", "train.cost_report=true"]) == 0
    out = capsys.readouterr().out
    assert f"cost report: {os.path.join(model_dir, REPORT)}" in out
    results = json.load(open(os.path.join(model_dir, REPORT)))
    assert set(results["models"]) == {"student", "teacher/teacher"}, results["models"].keys()
    assert results["ratios"]["teacher/teacher / student"]["flops_per_example"] > 1
    assert run_task(config, str(tmp_path / "plain"), ["train.steps=6"]) == 0  # off by default
    assert not os.path.exists(str(tmp_path / "plain" / REPORT))
