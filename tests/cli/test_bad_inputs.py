"""Runs that never lie: a table of bad inputs and faults, each through `pfd-train`'s own code path.

Every case asserts the exit status, a fragment of the message that names the
place (file and line, key, model_dir), and that what a previous run wrote
(config.yaml, checkpoints, metrics.json, export) is byte-for-byte unchanged.
`pfd_tf.cli.train.run_task` is what the `pfd-train` command runs after
parsing its flags; the cases that need a second process, the flags
themselves or signals run the real commands.  Sections: the model_dir's run
(identity, finished runs, --overwrite, the lock), config values, data
files, what a run reports (divergence, an undefined AUC, epochs), pfd-export,
pfd-launch and its tasks (signals; by pid, no task survives), pfd-data into
a directory that holds files.  The pipeline's own checks, unit by unit, are
in test_data_errors.py.
"""
from __future__ import annotations

import filecmp
import glob
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

import pytest
import yaml

from conftest import write_tiny_world
from pfd_tf.cli.train import run_task

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def snapshot(directory: str) -> dict[str, str]:
    """sha1 of every file under `directory`, by relative path."""
    out = {}
    for base, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny world and a finished pfd-train run on it: (world dir, model_dir)."""
    world = str(tmp_path_factory.mktemp("world"))
    write_tiny_world(world)
    model_dir = os.path.join(world, "run")
    assert run_task(os.path.join(world, "config.yaml"), model_dir) == 0
    return world, model_dir


@pytest.fixture
def world(tmp_path):
    """A fresh tiny world to spoil: its directory (config.yaml, train/, test/)."""
    write_tiny_world(str(tmp_path))
    return str(tmp_path)


@pytest.fixture
def run_copy(finished, tmp_path):
    """A copy of the finished run (config, world), so a case may try to spoil it."""
    world, model_dir = finished
    copy = str(tmp_path / "run")
    shutil.copytree(model_dir, copy)
    return os.path.join(world, "config.yaml"), copy


def _edit_line(path: str, line: int, edit: Callable[[list[str]], list[str]]) -> None:
    """Rewrites CSV line `line` (1-based, header = 1) of `path` by `edit(fields)`."""
    with open(path) as f:
        lines = f.read().splitlines()
    lines[line - 1] = ",".join(edit(lines[line - 1].split(",")))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _set_label(value: str):
    return lambda fields: fields[:-1] + [value]


# -- the model_dir's run ---------------------------------------------------------------------------
RERUN_CASES = [
    # (id, overrides, exit status, message fragment)
    ("changed mode", ["distill.mode=baseline"], 2, "distill.mode: 'pfd' -> 'baseline'"),
    ("changed lambda", ["distill.lambda=0.9"], 2, "distill.lambda: 0.5 -> 0.9"),
    ("changed tower", ["model.student_tower=[8]"], 2, "model.student_tower: [16, 8] -> [8]"),
    ("changed feature", ["features.user_id.dim=8"], 2, "features.user_id.dim: 4 -> 8"),
    ("same config, finished", [], 0, "this run finished at step 12 of 12"),
    ("finished, new log_every", ["train.log_every=3"], 0, "this run finished at step 12"),
    ("fewer steps than reached", ["train.steps=6"], 2, "the run is at step 12, past the 6 steps"),
]


@pytest.mark.parametrize("overrides,status,fragment", [c[1:] for c in RERUN_CASES], ids=[c[0] for c in RERUN_CASES])
def test_a_rerun_never_relabels_a_run(run_copy, capsys, overrides, status, fragment):
    config, model_dir = run_copy
    before = snapshot(model_dir)
    assert run_task(config, model_dir, overrides) == status
    out = capsys.readouterr()
    assert fragment in out.out + out.err
    assert snapshot(model_dir) == before


def test_more_steps_resume_and_are_recorded(run_copy, capsys):
    config, model_dir = run_copy
    assert run_task(config, model_dir, ["train.steps=18"]) == 0
    assert "resumed from" in capsys.readouterr().out
    with open(os.path.join(model_dir, "resumes.jsonl")) as f:
        (entry,) = [json.loads(line) for line in f]
    assert entry["step"] == 12 and entry["changed"] == {"train.steps": {"was": 12, "now": 18}}
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f)["steps"] == 18
    assert yaml.safe_load(open(os.path.join(model_dir, "config.yaml")))["train"]["steps"] == 18


def test_overwrite_starts_afresh(run_copy, capsys):
    config, model_dir = run_copy
    with open(os.path.join(model_dir, "notes.txt"), "w") as f:
        f.write("mine")  # not pfd-train's: kept
    assert run_task(config, model_dir, ["distill.mode=baseline"], overwrite=True) == 0
    assert "removed the previous run" in capsys.readouterr().out
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["mode"] == "baseline" and metrics["teacher"] is None and metrics["examples"] > 0
    assert open(os.path.join(model_dir, "notes.txt")).read() == "mine"


def test_checkpoints_without_a_config_are_refused(run_copy, capsys):
    config, model_dir = run_copy
    os.remove(os.path.join(model_dir, "config.yaml"))
    before = snapshot(model_dir)
    assert run_task(config, model_dir) == 2
    assert "holds checkpoints but no config.yaml" in capsys.readouterr().err
    assert snapshot(model_dir) == before


def test_a_live_lock_keeps_a_second_process_out(run_copy, capsys):
    config, model_dir = run_copy
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": holder.pid, "host": os.uname().nodename, "started": "now"}
        with open(os.path.join(model_dir, ".lock"), "w") as f:
            json.dump(lock, f)
        before = snapshot(model_dir)
        assert run_task(config, model_dir, ["train.steps=18"]) == 2
        assert f"in use by pid {holder.pid}" in capsys.readouterr().err
        assert snapshot(model_dir) == before
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale and taken over.
    assert run_task(config, model_dir) == 0
    assert "finished at step 12" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(model_dir, ".lock"))


def test_two_processes_into_one_model_dir(world):
    """Two real `pfd-train` processes: the second is refused while the first trains, which finishes."""
    config, model_dir = os.path.join(world, "config.yaml"), os.path.join(world, "run")
    command = [sys.executable, "-m", "pfd_tf.cli.train", "--config", config, "--model_dir", model_dir,
               "--set", "train.steps=300", "--set", "train.log_every=100"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(model_dir, "config.yaml")) and time.monotonic() < deadline:
        time.sleep(0.2)
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"in use by pid {first.pid}" in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f)["steps"] == 300


def test_an_unwritable_model_dir_is_named(world, capsys):
    blocker = os.path.join(world, "a_file")
    open(blocker, "w").close()
    assert run_task(os.path.join(world, "config.yaml"), os.path.join(blocker, "run")) == 2
    assert f"{blocker}/run: cannot create the model_dir" in capsys.readouterr().err


# -- config values ---------------------------------------------------------------------------------
CONFIG_CASES = [
    ("nan learning rate", ["train.learning_rate=.nan"], "train.learning_rate: expected a finite number"),
    ("inf temperature", ["distill.temperature=.inf"], "distill.temperature: expected a finite number"),
    ("negative stall timeout", ["cluster.stall_timeout_seconds=-1"], "cluster.stall_timeout_seconds: must be >= 0"),
    ("YAML error in --set", ["model.student_tower=[16, 8"], "--set 'model.student_tower=[16, 8': the value is not valid YAML"),
    ("swap step past the run", ["distill.swap_step=12"], "distill.swap_step: 12 is at or past the run's end"),
    ("warm-up past the run", ["train.warmup_steps=13"], "train.warmup_steps: 13 is past the run's end"),
    ("swap fraction too big", ["distill.swap_fraction=1.5"], "distill.swap_fraction: a fraction of the run's steps"),
    ("steps and epochs", ["train.steps=12", "train.epochs=2"], "train.epochs: set the run's length by train.steps"),
    ("steps 0 (replacing epochs)", ["train.steps=0"], "train.steps: must be positive, got 0"),
    ("epochs 0 (replacing steps)", ["train.epochs=0"], "train.epochs: must be positive, got 0"),
    ("negative steps", ["train.steps=-5"], "train.steps: must be positive"),
    ("batch size 0", ["train.batch_size=0"], "train.batch_size: must be positive"),
    ("log_every 0", ["train.log_every=0"], "train.log_every: must be positive"),
    ("shuffle buffer 0", ["data.shuffle_buffer=0"], "data.shuffle_buffer: must be positive"),
    ("a column named twice in data.columns",
     ["data.columns=[day, user_id, item_id, device, price, tags, dwell, cart, label, user_id]"],
     "data.columns[9]: duplicate column 'user_id' (also data.columns[1])"),
    ("tables that cannot fit in memory", ["features.user_id.hash_buckets=1000000000000"],
     "features[0].hash_buckets: the embedding tables need at least 29,802.3 GiB"),
    ("held-out file that is a training file", ["data.eval_files=[train/part-1.csv]"],
     "/train/part-1.csv is a training file too (data.train_files)"),
    ("regular feature on a privileged column",
     ['features=[{"name": "user_id", "kind": "categorical", "hash_buckets": 10, "dim": 2},'
      ' {"name": "dwell", "kind": "numeric", "boundaries": [1.0], "dim": 2, "role": "privileged"},'
      ' {"name": "dwell_copy", "column": "dwell", "kind": "numeric", "boundaries": [2.0], "dim": 2}]'],
     "features[2].column: regular feature 'dwell_copy' reads column 'dwell'"),
]


@pytest.mark.parametrize("overrides,fragment", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_values_are_refused_before_anything_is_written(run_copy, capsys, overrides, fragment):
    config, model_dir = run_copy
    before = snapshot(model_dir)
    assert run_task(config, model_dir, overrides) == 2
    assert fragment in capsys.readouterr().err
    assert snapshot(model_dir) == before


# -- data ------------------------------------------------------------------------------------------
def _train_file(world):
    return os.path.join(world, "train", "part-0.csv")


def _test_file(world):
    return os.path.join(world, "test", "test.csv")


DATA_CASES = [
    # (id, spoil(world), message fragment(world)); each refused with exit status 2
    ("label 2", lambda w: _edit_line(_train_file(w), 5, _set_label("2")),
     lambda w: f"{_train_file(w)}: line 5: label column 'label'"),
    ("label -1", lambda w: _edit_line(_train_file(w), 7, _set_label("-1")),
     lambda w: f"{_train_file(w)}: line 7: label column 'label'"),
    ("NaN label", lambda w: _edit_line(_train_file(w), 9, _set_label("nan")),
     lambda w: f"{_train_file(w)}: line 9: label column 'label'"),
    ("too many fields", lambda w: _edit_line(_train_file(w), 4, lambda f: f[:3] + ["x"] + f[3:]),
     lambda w: f"{_train_file(w)}: line 4: expected 9 fields, found 10"),
    ("too few fields", lambda w: _edit_line(_train_file(w), 4, lambda f: f[:-2]),
     lambda w: f"{_train_file(w)}: line 4: expected 9 fields, found 7"),
    ("bad held-out label", lambda w: _edit_line(_test_file(w), 3, _set_label("3")),
     lambda w: f"{_test_file(w)}: line 3: label column 'label'"),
    ("shifted held-out row", lambda w: _edit_line(_test_file(w), 6, lambda f: f[:2] + ["x"] + f[2:]),
     lambda w: f"{_test_file(w)}: line 6: expected 9 fields, found 10"),
    ("header only", lambda w: [_truncate_to_header(p) for p in _train_files(w)],
     lambda w: f"data.train_files: no data rows in {_train_files(w)[0]}"),
    ("TFRecord read as CSV", lambda w: _tfrecord_instead_of_csv(_train_file(w)),
     lambda w: f"{_train_file(w)}"),
    ("CSV read as TFRecord", lambda w: _set_data_format(w, "tfrecord"),
     lambda w: "not a TFRecord file"),
    ("gzip without .gz", lambda w: _gzip_in_place(_train_file(w)),
     lambda w: f"{_train_file(w)}"),
]


def _train_files(world):
    return [os.path.join(world, "train", n) for n in sorted(os.listdir(os.path.join(world, "train")))]


def _truncate_to_header(path):
    with open(path) as f:
        header = f.readline()
    with open(path, "w") as f:
        f.write(header)


def _tfrecord_instead_of_csv(path):
    from pfd_tf._keras import tf

    with tf.io.TFRecordWriter(path) as writer:
        writer.write(tf.train.Example().SerializeToString())


def _gzip_in_place(path):
    data = open(path, "rb").read()
    with gzip.open(path, "wb") as f:
        f.write(data)


def _set_data_format(world, data_format):
    path = os.path.join(world, "config.yaml")
    raw = yaml.safe_load(open(path))
    raw["data"]["format"] = data_format
    raw["data"]["train_files"] = ["train/*"]
    yaml.safe_dump(raw, open(path, "w"))


@pytest.mark.parametrize("spoil,fragment", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_bad_data_is_named_with_its_file_and_line(world, capsys, spoil, fragment):
    spoil(world)
    model_dir = os.path.join(world, "run")
    assert run_task(os.path.join(world, "config.yaml"), model_dir) == 2
    err = capsys.readouterr().err
    assert fragment(world) in err, err
    assert "Traceback" not in err


def test_held_out_errors_are_found_before_training(world, capsys):
    _edit_line(_test_file(world), 3, _set_label("3"))
    model_dir = os.path.join(world, "run")
    assert run_task(os.path.join(world, "config.yaml"), model_dir) == 2
    assert not os.path.exists(os.path.join(model_dir, "checkpoints"))
    assert not os.path.exists(os.path.join(model_dir, "config.yaml"))


GOOD_DATA_CASES = [
    ("gzip CSV", lambda w: [(_gzip_in_place(p), os.rename(p, p + ".gz")) for p in _train_files(w)]
     and _set_train_files(w, ["train/*.csv.gz"])),
    ("byte-order mark", lambda w: _add_bom(_train_file(w))),
]


def _set_train_files(world, globs):
    path = os.path.join(world, "config.yaml")
    raw = yaml.safe_load(open(path))
    raw["data"]["train_files"] = globs
    yaml.safe_dump(raw, open(path, "w"))


def _add_bom(path):
    data = open(path, "rb").read()
    open(path, "wb").write(b"\xef\xbb\xbf" + data)


@pytest.mark.parametrize("change", [c[1] for c in GOOD_DATA_CASES], ids=[c[0] for c in GOOD_DATA_CASES])
def test_compressed_and_bom_files_train_on_the_same_rows(world, change):
    change(world)
    model_dir = os.path.join(world, "run")
    assert run_task(os.path.join(world, "config.yaml"), model_dir) == 0
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["train_rows"] == 960  # write_tiny_world's 80% of 1,200 rows


# -- what a run reports ----------------------------------------------------------------------------
def test_a_diverged_run_stops_naming_the_step_and_exports_nothing(world, capsys):
    model_dir = os.path.join(world, "run")
    status = run_task(os.path.join(world, "config.yaml"), model_dir,
                      ["train.learning_rate=1.0e+38", "train.warmup_steps=0", "train.initial_accumulator=1.0e-30"])
    err = capsys.readouterr().err
    assert status == 4, err
    assert "the training loss became nan at step" in err or "the training loss became inf at step" in err
    assert "nothing was exported" in err
    assert not os.path.exists(os.path.join(model_dir, "export"))
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))


def test_one_class_held_out_reports_no_auc(world, capsys):
    path = _test_file(world)
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join([lines[0]] + [",".join(line.split(",")[:-1] + ["0"]) for line in lines[1:]]) + "\n")
    model_dir = os.path.join(world, "run")
    assert run_task(os.path.join(world, "config.yaml"), model_dir) == 0
    err = capsys.readouterr().err
    assert path in err and "AUC is undefined" in err
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    for who in ("student", "teacher"):
        assert "auc" not in metrics[who] and metrics[who]["logloss"] > 0
    assert "student_auc" not in metrics["eval"]


def test_epochs_set_the_run_length_with_warmup_and_swap_as_fractions(world, capsys):
    model_dir = os.path.join(world, "run")
    overrides = ["train.epochs=2", "train.warmup_fraction=0.25", "distill.swap_fraction=0.5", "train.log_every=10"]
    assert run_task(os.path.join(world, "config.yaml"), model_dir, overrides) == 0
    out = capsys.readouterr().out
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["steps"] == 30 and metrics["epochs"] == 2.0  # round(2 * 960 / 64)
    assert (metrics["warmup_steps"], metrics["swap_step"]) == (8, 15)
    assert "step 30/30  epoch 2.00/2.00" in out
    assert "Epoch 4/4" not in out


def test_pfd_export_of_a_missing_checkpoint(finished):
    _, model_dir = finished
    missing = os.path.join(model_dir, "checkpoints", "ckpt-999")
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.export", "--model_dir", model_dir,
                           "--checkpoint", missing, "--out", os.path.join(model_dir, "elsewhere")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"--checkpoint {missing}: no such checkpoint" in proc.stderr and "ckpt-12" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- pfd-launch and its tasks: no orphan servers ------------------------------------------------
TASKS = ("ps-0", "worker-0", "chief")
LONG = ["train.steps=100000", "train.log_every=1000"]  # still training when the launcher is ended


def _launch(tmp_path) -> tuple[subprocess.Popen, str, list[str]]:
    """(the launcher, its model_dir, the lines it has printed so far: a thread keeps reading them)."""
    config = write_tiny_world(str(tmp_path / "world"))
    model_dir = str(tmp_path / "run")
    command = [sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir,
               "--workers", "1", "--ps", "1", "--noevaluator"]
    for item in LONG:
        command += ["--set", item]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, model_dir, lines


def _pids(model_dir: str) -> dict[str, int]:
    try:
        with open(os.path.join(model_dir, "cluster.json")) as f:
            return {name: task["pid"] for name, task in json.load(f)["tasks"].items()}
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _alive(pid: int) -> bool:
    """Exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_until_serving(proc: subprocess.Popen, model_dir: str, lines: list[str],
                        timeout: float = 120) -> dict[str, int]:
    """The tasks' pids, once all are listed and both servers have said they serve."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the launcher ended early ({proc.returncode}):\n{''.join(lines)[-3000:]}")
        out = "".join(lines)
        pids = _pids(model_dir)
        serving = all(f"{name}: serving at" in out for name in ("ps-0", "worker-0"))
        if set(TASKS) <= set(pids) and serving and all(_alive(p) for p in pids.values()):
            time.sleep(3)  # the chief connects and starts training
            return pids
        time.sleep(0.2)
    _end(proc, _pids(model_dir).values())
    pytest.fail(f"the cluster did not come up within {timeout}s:\n{''.join(lines)[-3000:]}")


def _end(proc: subprocess.Popen, pids) -> None:
    """After a failure: leaves nothing running behind the test."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    _kill_left(pids)


def _wait_gone(pids, timeout: float) -> list[int]:
    """The pids still alive after `timeout` seconds (none, if all ended)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if _alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _kill_left(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _signal_launcher(tmp_path, signum: int) -> tuple[int, str, list[int]]:
    """Starts a cluster, sends `signum` to the launcher; (its exit status, its output, tasks left after 5 s)."""
    proc, model_dir, lines = _launch(tmp_path)
    pids = _wait_until_serving(proc, model_dir, lines)
    os.kill(proc.pid, signum)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        _end(proc, pids.values())
        pytest.fail(f"the launcher did not end within 30 s of {signal.Signals(signum).name}")
    left = _wait_gone(pids.values(), timeout=5)
    _kill_left(left)
    time.sleep(0.2)  # the reader thread takes the last lines
    return proc.returncode, "".join(lines), left


def test_sigterm_to_the_launcher_stops_every_task(tmp_path):
    """SIGTERM (what `timeout` and `kill` send) stops the cluster as Ctrl-C does: exit 143, no task left."""
    code, out, left = _signal_launcher(tmp_path, signal.SIGTERM)
    assert code == 143, out[-3000:]
    assert "[launcher] SIGTERM received: stopping every task" in out
    assert not left, f"tasks still running after the launcher's exit: {left}"


def test_sighup_to_the_launcher_stops_every_task_with_129(tmp_path):
    """SIGHUP (the terminal closed) stops the cluster too, with 128 + 1."""
    code, out, left = _signal_launcher(tmp_path, signal.SIGHUP)
    assert code == 129, out[-3000:]
    assert "[launcher] SIGHUP received: stopping every task" in out
    assert not left, f"tasks still running after the launcher's exit: {left}"


def test_a_killed_chief_ends_the_launcher_with_137_as_a_shell_reports_it(tmp_path):
    """A task killed by signal N is reported as 128 + N (Popen's -N, masked by sys.exit, was 247)."""
    proc, model_dir, lines = _launch(tmp_path)
    pids = _wait_until_serving(proc, model_dir, lines)
    os.kill(pids["chief"], signal.SIGKILL)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        _end(proc, pids.values())
        pytest.fail("the launcher did not end within 60 s of its chief's death")
    left = _wait_gone(pids.values(), timeout=10)
    _kill_left(left)
    time.sleep(0.2)  # the reader thread takes the last lines
    assert proc.returncode == 128 + signal.SIGKILL, "".join(lines)[-3000:]
    assert "[launcher] chief was killed by SIGKILL (exit status 137)" in "".join(lines)
    assert not left, f"tasks still running after the launcher's exit: {left}"


def test_a_killed_launcher_takes_every_task_with_it(tmp_path):
    """SIGKILL leaves the launcher no say: each task's lifeline (parent-death signal) ends it within 10 s."""
    proc, model_dir, lines = _launch(tmp_path)
    pids = _wait_until_serving(proc, model_dir, lines)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    left = _wait_gone(pids.values(), timeout=10)
    _kill_left(left)
    assert proc.returncode == -signal.SIGKILL
    assert not left, f"orphaned tasks, reparented and still running: {left}"


def test_the_launcher_names_the_variable_the_lifeline_reads():
    """launch/ does not import pfd_tf (it would load TensorFlow); the two names must agree."""
    from launch import local
    from pfd_tf.cluster import lifeline

    assert local.LAUNCHER_PID == lifeline.ENV


def test_a_task_whose_launcher_is_already_gone_exits_at_once():
    """The parent-death signal is asked for after the fork: a launcher gone before that is seen by its pid."""
    script = f"""
import ctypes, importlib.util, os
spec = importlib.util.spec_from_file_location("lifeline", {os.path.join(ROOT, "pfd_tf", "cluster", "lifeline.py")!r})
lifeline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lifeline)  # alone: pfd_tf's __init__ would load TensorFlow
armed = lifeline.exit_with_launcher({{lifeline.ENV: str(os.getppid())}})
signum = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(signum), 0, 0, 0)  # PR_GET_PDEATHSIG
print("armed", armed, signum.value, flush=True)
print("without a launcher", lifeline.exit_with_launcher({{}}), flush=True)
lifeline.exit_with_launcher({{lifeline.ENV: "1"}})  # pid 1 is not our parent: that launcher is gone
print("survived", flush=True)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["armed True 15", "without a launcher False"], proc.stdout + proc.stderr
    assert proc.returncode == 143
    assert "the launcher (pid 1) is gone" in proc.stderr


# -- pfd-data into a directory that holds files -------------------------------------------------
SMALL = ["--scenario", "cvr", "--rows", "2000", "--seed", "1"]


def _pfd_data(out, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pfd_tf.cli.data", *SMALL, "--out", str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _tree(directory) -> dict[str, bytes]:
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = f.read()
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A 4-day world written by pfd-data into a fresh directory (copy it before changing it)."""
    out = tmp_path_factory.mktemp("written") / "world"
    proc = _pfd_data(out, "--days", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_a_fresh_directory_gets_the_dataset_and_a_manifest_of_it(written):
    """Every file written is listed in the manifest, nothing else is in the directory, no staging is left."""
    with open(written / ".pfd-data.json") as f:
        manifest = json.load(f)["files"]
    assert sorted(_tree(written)) == sorted(manifest + [".pfd-data.json"])
    assert manifest == ["config.yaml", "config_mtl.yaml", "test/day-03.csv", "train/day-00.csv",
                        "train/day-01.csv", "train/day-02.csv"]
    assert not glob.glob(str(written.parent / ".world.pfd-data-*"))


def test_a_non_empty_directory_is_refused_and_left_byte_for_byte(written, tmp_path):
    """Without --overwrite: exit 2, `pfd-data: error:` naming the directory and --overwrite, nothing changed."""
    out = tmp_path / "world"
    shutil.copytree(written, out)
    before = _tree(out)
    proc = _pfd_data(out, "--days", "3")
    assert proc.returncode == 2, proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("pfd-data: error: --out ") and str(out) in error and "--overwrite" in error
    assert _tree(out) == before
    assert not glob.glob(str(tmp_path / ".world.pfd-data-*"))


def test_overwrite_with_fewer_days_leaves_no_stale_day_file(written, tmp_path):
    """--overwrite --days 3 over 4 days: the old test day (day 3) is gone, not read as training by the globs."""
    out = tmp_path / "world"
    shutil.copytree(written, out)
    (out / "NOTES.txt").write_text("mine\n")  # not data: kept
    proc = _pfd_data(out, "--days", "3", "--overwrite")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(glob.glob(str(out / "train" / "*.csv"))) == [str(out / "train" / f"day-0{d}.csv") for d in (0, 1)]
    assert glob.glob(str(out / "test" / "*.csv")) == [str(out / "test" / "day-02.csv")]
    assert (out / "NOTES.txt").read_text() == "mine\n"
    with open(out / ".pfd-data.json") as f:
        assert "test/day-03.csv" not in json.load(f)["files"]
    fresh = tmp_path / "fresh"
    assert _pfd_data(fresh, "--days", "3").returncode == 0  # the same as written into an empty directory
    assert not filecmp.dircmp(out / "train", fresh / "train").diff_files
    assert filecmp.cmp(out / "config.yaml", fresh / "config.yaml", shallow=False)


def test_overwrite_refuses_a_foreign_file_the_globs_would_read(written, tmp_path):
    """A file pfd-data did not write, matching train/*.csv, would silently join training: named, nothing changed."""
    out = tmp_path / "world"
    shutil.copytree(written, out)
    (out / "train" / "extra.csv").write_text("user_id,purchase\n1,0\n")
    before = _tree(out)
    proc = _pfd_data(out, "--days", "4", "--overwrite")
    assert proc.returncode == 2, proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("pfd-data: error:") and str(out / "train" / "extra.csv") in error
    assert _tree(out) == before


def test_overwrite_refuses_a_directory_pfd_data_did_not_write(tmp_path):
    """No manifest, so every CSV under train/ is foreign; a config.yaml of the user's would be overwritten."""
    from pfd_tf.datasets.output_dir import OutputDirError, write_dataset_into

    def write(directory):
        os.makedirs(os.path.join(directory, "train"))
        with open(os.path.join(directory, "train", "a.csv"), "w") as f:
            f.write("x\n")
        with open(os.path.join(directory, "config.yaml"), "w") as f:
            f.write("data: {train_files: [train/*.csv], eval_files: [test/*.csv]}\n")
        return os.path.join(directory, "config.yaml")

    out = tmp_path / "theirs"
    out.mkdir()
    (out / "config.yaml").write_text("my own\n")
    with pytest.raises(OutputDirError, match="config.yaml was not written by pfd-data .* would overwrite it"):
        write_dataset_into(str(out), write, overwrite=True)
    assert (out / "config.yaml").read_text() == "my own\n" and sorted(os.listdir(out)) == ["config.yaml"]
    assert write_dataset_into(str(tmp_path / "new"), write) == str(tmp_path / "new" / "config.yaml")


def test_the_movielens_writer_refuses_a_non_empty_directory_too(tmp_path):
    """`python -m pfd_tf.datasets.movielens` follows the same rule (its train/part-XX.csv count varies with the data)."""
    from movielens_files import write_movielens

    src = write_movielens(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.csv").write_text("x\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.datasets.movielens", "--src", src, "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(out) in proc.stderr and "--overwrite" in proc.stderr
    assert os.listdir(out) == ["old.csv"]
