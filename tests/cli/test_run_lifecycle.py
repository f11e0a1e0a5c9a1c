"""A run's lifecycle through pfd-train's own code path: a finite blow-up, pfd-eval, training files that changed
before a resume, damaged checkpoints, a full disk.

Like test_bad_inputs.py, every refusal asserts the exit status, the message
naming the place, and that what the previous run wrote is byte-for-byte
unchanged (`snapshot`).  `run_task` is what `pfd-train` runs after parsing
its flags and `evaluate_run` what `pfd-eval` runs; the command lines
themselves run as subprocesses where the flags or a process limit matter.
"""
from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest

from pfd_tf.eval_run import evaluate_run
from pfd_tf.cli.train import run_task
from test_bad_inputs import ROOT, _edit_line, _set_label, finished, run_copy, snapshot, world  # noqa: F401

LN2 = 0.6931


def _checkpoint_files(model_dir: str, step: int) -> list[str]:
    return sorted(glob.glob(os.path.join(model_dir, "checkpoints", f"ckpt-{step}.*")))


def _truncate(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _without(snap: dict, prefix: str) -> dict:
    return {k: v for k, v in snap.items() if not k.startswith(prefix)}


# -- divergence ------------------------------------------------------------------------------------
def test_a_finite_blow_up_stops_with_status_4_and_writes_nothing(tmp_path, capsys):
    """The ensemble world at the learning rate its config shipped with (1.6): the loss blows up, stays finite."""
    from pfd_tf.datasets.ensemble import generate_ensemble

    config = generate_ensemble(str(tmp_path / "world"), rows=6000, seed=1)
    model_dir = str(tmp_path / "run")
    status = run_task(config, model_dir, ["train.learning_rate=1.6", "train.steps=5", "train.log_every=5"])
    err = capsys.readouterr().err
    assert status == 4, err
    assert "pfd-train: error: training diverged by step 5: the mean training log loss of" in err
    assert f"above ln 2 + train.divergence_training_margin = {LN2 + 20:.4g}" in err and "nothing was exported" in err
    value = float(err.split("over steps 1-5 was ")[1].split(",")[0])
    assert value > LN2 + 20
    assert "Traceback" not in err
    for written in ("export", "metrics.json", "checkpoints/ckpt-5.index"):
        assert not os.path.exists(os.path.join(model_dir, written))


def test_a_held_out_log_loss_above_the_constant_predictor_stops_the_run(world, capsys):
    """Held-out labels flipped: training looks fine, the held-out log loss is far above the constant's."""
    path = os.path.join(world, "test", "test.csv")
    with open(path) as f:
        rows = f.read().splitlines()
    for line in range(2, len(rows) + 1):
        _edit_line(path, line, lambda fields: fields[:-1] + [str(1 - int(fields[-1]))])
    model_dir = os.path.join(world, "run")
    status = run_task(os.path.join(world, "config.yaml"), model_dir,
                      ["train.learning_rate=0.3", "train.steps=24", "train.divergence_margin=0.2"])
    err = capsys.readouterr().err
    assert status == 4, err
    assert "pfd-train: error: training diverged: the held-out log loss of the student is" in err
    assert "+ train.divergence_margin = " in err and "nothing was exported and no metrics.json written" in err
    assert not os.path.exists(os.path.join(model_dir, "export"))
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))


@pytest.mark.parametrize("key", ["divergence_margin", "divergence_training_margin"])
def test_the_divergence_margins_are_validated(run_copy, capsys, key):
    config, model_dir = run_copy
    before = snapshot(model_dir)
    assert run_task(config, model_dir, [f"train.{key}=0"]) == 2
    assert f"train.{key}: must be positive" in capsys.readouterr().err
    assert snapshot(model_dir) == before


# -- pfd-eval --------------------------------------------------------------------------------------
def test_pfd_eval_scores_as_metrics_json_and_writes_its_own_file(finished, tmp_path):
    world, original = finished
    model_dir = str(tmp_path / "run")
    shutil.copytree(original, model_dir)
    before = snapshot(model_dir)
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.eval", "--model_dir", model_dir,
                           "--files", os.path.join(world, "test", "*.csv")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(proc.stdout)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert scores["student"] == metrics["student"] and scores["teacher"] == metrics["teacher"]
    assert scores["step"] == 12 and scores["which"] == "final" and scores["rows"] == metrics["eval_rows"]["rows"]
    written = proc.stderr.strip().splitlines()[-1].split("written: ")[1]
    assert os.path.dirname(written) == os.path.join(model_dir, "eval")
    with open(written) as f:
        assert json.load(f) == scores
    assert _without(snapshot(model_dir), "eval/") == before


def test_pfd_eval_refuses_training_files_unless_allowed(run_copy, finished, tmp_path, capsys):
    (world, _), (_, model_dir) = finished, run_copy
    before = snapshot(model_dir)
    train = os.path.join(world, "train", "part-*.csv")
    assert evaluate_run(model_dir, [train]) == 2
    assert f"--files: {os.path.join(world, 'train', 'part-0.csv')} is a training file" in capsys.readouterr().err
    assert snapshot(model_dir) == before
    out = str(tmp_path / "train.json")
    assert evaluate_run(model_dir, [train], out=out, allow_train_files=True) == 0
    with open(out) as f:
        assert json.load(f)["rows"] == 960


def test_pfd_eval_names_a_bad_row_and_writes_nothing(run_copy, finished, tmp_path, capsys):
    (world, _), (_, model_dir) = finished, run_copy
    other = str(tmp_path / "other.csv")
    shutil.copy(os.path.join(world, "test", "test.csv"), other)
    _edit_line(other, 4, _set_label("7"))
    before = snapshot(model_dir)
    assert evaluate_run(model_dir, [other]) == 2
    assert f"pfd-eval: error: {other}: line 4: label column 'label'" in capsys.readouterr().err
    assert snapshot(model_dir) == before


def test_pfd_eval_best_needs_early_stopping(run_copy, finished, capsys):
    (world, _), (_, model_dir) = finished, run_copy
    assert evaluate_run(model_dir, [os.path.join(world, "test", "*.csv")], which="best") == 2
    assert "no best checkpoint" in capsys.readouterr().err


def test_a_finished_run_asked_for_other_held_out_files_points_to_pfd_eval(run_copy, finished, capsys):
    (world, _), (config, model_dir) = finished, run_copy
    before = snapshot(model_dir)
    other = os.path.join(os.path.dirname(model_dir), "other-day.csv")  # another held-out day, not trained on
    shutil.copyfile(os.path.join(world, "test", "test.csv"), other)
    assert run_task(config, model_dir, [f"data.eval_files=[{other}]"]) == 2
    err = capsys.readouterr().err
    assert "this run is finished, and its metrics.json scores the held-out rows it was trained with" in err
    assert f"pfd-eval --model_dir {model_dir} --files GLOB" in err
    assert snapshot(model_dir) == before


# -- training files that changed before a resume ----------------------------------------------------
def test_changed_training_files_are_refused_or_allowed_and_recorded(world, capsys):
    config, model_dir = os.path.join(world, "config.yaml"), os.path.join(world, "run")
    assert run_task(config, model_dir, ["train.steps=6"]) == 0
    part0, part1 = (os.path.join(world, "train", f"part-{i}.csv") for i in (0, 1))
    with open(part0) as f:
        original = f.read()
    lines = original.splitlines()
    changes = [
        ("rows appended", lambda: open(part0, "a").write("\n".join(lines[1:4]) + "\n"),
         f"{part0}: rows 480 -> 483, bytes"),
        ("file deleted", lambda: os.rename(part0, part0 + ".away"), f"{part0}: gone (had 480 rows)"),
        ("file added", lambda: shutil.copy(part1, os.path.join(world, "train", "part-2.csv")),
         f"{os.path.join(world, 'train', 'part-2.csv')}: new (480 rows)"),
    ]
    before = snapshot(model_dir)
    for name, change, fragment in changes:
        change()
        assert run_task(config, model_dir, ["train.steps=12"]) == 2, name
        err = capsys.readouterr().err
        assert "the training files changed since the run trained on them" in err and fragment in err, (name, err)
        assert "--allow-data-change" in err
        assert snapshot(model_dir) == before, name
        if os.path.exists(part0 + ".away"):
            os.rename(part0 + ".away", part0)
        for extra in glob.glob(os.path.join(world, "train", "part-2.csv")):
            os.remove(extra)
        with open(part0, "w") as f:
            f.write(original)
    changes[0][1]()
    allowed = subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", config, "--model_dir", model_dir,
                              "--set", "train.steps=12", "--allow-data-change"],
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    with open(os.path.join(model_dir, "resumes.jsonl")) as f:
        (entry,) = [json.loads(line) for line in f]
    assert entry["step"] == 6 and entry["changed"] == {"train.steps": {"was": 6, "now": 12}}
    assert entry["data"][os.path.realpath(part0)]["was"]["rows"] == 480
    assert entry["data"][os.path.realpath(part0)]["now"]["rows"] == 483
    with open(os.path.join(model_dir, "train_files.json")) as f:
        assert json.load(f)["files"][os.path.realpath(part0)]["rows"] == 483


# -- damaged checkpoints ---------------------------------------------------------------------------
DAMAGES = [
    ("truncated", lambda files: _truncate([p for p in files if ".data-" in p][0]), "OutOfRangeError"),
    ("deleted", lambda files: [os.remove(p) for p in files], "NotFoundError"),
]


@pytest.mark.parametrize("damage,kind", [d[1:] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact(run_copy, capsys, damage, kind):
    config, model_dir = run_copy
    damage(_checkpoint_files(model_dir, 12))
    assert run_task(config, model_dir, ["train.steps=18"]) == 0
    out = capsys.readouterr()
    damaged, kept = (os.path.join(model_dir, "checkpoints", f"ckpt-{n}") for n in (12, 6))
    assert f"warning: checkpoint {damaged} is damaged ({kind}" in out.err and f"resuming from {kept}" in out.err
    assert f"resumed from {kept} at step 6" in out.out
    with open(os.path.join(model_dir, "resumes.jsonl")) as f:
        (entry,) = [json.loads(line) for line in f]
    assert entry["step"] == 6
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f)["steps"] == 18


def test_no_intact_checkpoint_is_named_and_nothing_is_rewritten(run_copy, capsys):
    config, model_dir = run_copy
    for step in (6, 12):
        _truncate([p for p in _checkpoint_files(model_dir, step) if ".data-" in p][0])
    before = snapshot(model_dir)
    assert run_task(config, model_dir, ["train.steps=18"]) == 2
    err = capsys.readouterr().err
    assert f"{os.path.join(model_dir, 'checkpoints')}: no intact checkpoint to resume from: ckpt-12 (" in err
    assert "ckpt-6 (OutOfRangeError" in err and "Traceback" not in err
    assert snapshot(model_dir) == before  # config.yaml and resumes.jsonl included


def test_pfd_export_and_pfd_eval_name_a_damaged_checkpoint(run_copy, finished, capsys):
    (world, _), (_, model_dir) = finished, run_copy
    _truncate([p for p in _checkpoint_files(model_dir, 12) if ".data-" in p][0])
    before = snapshot(model_dir)
    damaged = os.path.join(model_dir, "checkpoints", "ckpt-12")
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.export", "--model_dir", model_dir],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"pfd-export: error: checkpoint {damaged} is damaged (OutOfRangeError" in proc.stderr
    assert "intact checkpoints in" in proc.stderr and "ckpt-6" in proc.stderr and "Traceback" not in proc.stderr
    assert evaluate_run(model_dir, [os.path.join(world, "test", "*.csv")]) == 2
    assert f"pfd-eval: error: checkpoint {damaged} is damaged" in capsys.readouterr().err
    assert snapshot(model_dir) == before


# -- a full disk -----------------------------------------------------------------------------------
def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def test_a_checkpoint_that_cannot_be_written_names_its_directory_and_keeps_the_last(world, capsys):
    """Portable (what CI runs): pfd-train under a file-size limit that the step-12 checkpoint's data file exceeds
    (TensorFlow says OutOfRangeError for EFBIG, ResourceExhaustedError for ENOSPC: the tmpfs test below)."""
    config, model_dir = os.path.join(world, "config.yaml"), os.path.join(world, "run")
    assert run_task(config, model_dir, ["train.steps=6"]) == 0
    data = [p for p in _checkpoint_files(model_dir, 6) if ".data-" in p][0]
    limited = subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", config, "--model_dir", model_dir,
                              "--set", "train.steps=12"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                             preexec_fn=_limit_file_size(os.path.getsize(data) // 2))
    assert limited.returncode == 2, limited.stderr[-2000:]
    kept = os.path.join(model_dir, "checkpoints", "ckpt-6")
    assert (f"pfd-train: error: {os.path.join(model_dir, 'checkpoints')}: cannot write the checkpoint of step 12 "
            f"(OutOfRangeError: File too large") in limited.stderr
    assert f"The last good checkpoint is kept: {kept}" in limited.stderr and "Traceback" not in limited.stderr
    assert not glob.glob(os.path.join(model_dir, "checkpoints", "*_temp*"))
    capsys.readouterr()
    assert run_task(config, model_dir, ["train.steps=12"]) == 0
    assert f"resumed from {kept} at step 6" in capsys.readouterr().out


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 32 MiB tmpfs mounted at tmp_path/disk, where the test may mount one (root, mount permitted)."""
    mount_point = str(tmp_path / "disk")
    os.makedirs(mount_point)
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mount_point], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    yield mount_point
    # Lazily: the in-process run's checkpoint writer may still hold a file there ("target is busy"), and a
    # mount left behind makes pytest's clean-up of old temporary directories warn on every later run.
    subprocess.run(["umount", "--lazy", mount_point], check=False)


def test_a_full_disk_during_a_checkpoint_is_named(world, small_tmpfs, capsys):
    """ENOSPC for real: the model_dir on a small tmpfs, filled after the step-6 checkpoint."""
    config, model_dir = os.path.join(world, "config.yaml"), os.path.join(small_tmpfs, "run")
    assert run_task(config, model_dir, ["train.steps=6"]) == 0
    capsys.readouterr()
    filler = os.path.join(small_tmpfs, "filler")
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass  # the disk is full: the lock cannot be written
    before = snapshot(model_dir)
    assert run_task(config, model_dir, ["train.steps=12"]) == 2
    assert f"{model_dir}: cannot write the model_dir (No space left on device)" in capsys.readouterr().err
    assert snapshot(model_dir) == before
    with open(filler, "r+b") as f:  # room for the small files, not for the step-12 checkpoint (32 kB)
        f.truncate(os.path.getsize(filler) - 20 * 1024)
    kept = os.path.join(model_dir, "checkpoints", "ckpt-6")
    assert run_task(config, model_dir, ["train.steps=12"]) == 2
    err = capsys.readouterr().err
    assert (f"{os.path.join(model_dir, 'checkpoints')}: cannot write the checkpoint of step 12 "
            "(ResourceExhaustedError: No space left on device") in err
    assert f"The last good checkpoint is kept: {kept}" in err and "Traceback" not in err
    assert not glob.glob(os.path.join(model_dir, "checkpoints", "*_temp*"))
    os.remove(filler)
    assert run_task(config, model_dir, ["train.steps=12"]) == 0
    assert f"resumed from {kept} at step 6" in capsys.readouterr().out
