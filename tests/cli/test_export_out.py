"""`pfd-export --out X` writes the export directory X (`X/student`), refuses an X it would overwrite or mix
with, and neither pfd-train nor pfd-export warns "MLPTower ... is not built" any more."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import write_tiny_world
from test_bad_inputs import snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOT_BUILT = "because it is not built"  # Keras' "Skipping full serialization of TF-Keras layer <...MLPTower...>"


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PFD run by `pfd-train` (a teacher and a student, both MLP towers): its model_dir."""
    world = str(tmp_path_factory.mktemp("world"))
    config = write_tiny_world(world)
    model_dir = os.path.join(world, "run")
    proc = _run("pfd_tf.cli.train", "--config", config, "--model_dir", model_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert NOT_BUILT not in proc.stderr + proc.stdout, proc.stderr
    return model_dir


def test_out_is_the_export_directory_and_each_path_is_printed(trained, tmp_path):
    out = str(tmp_path / "exported")
    proc = _run("pfd_tf.cli.export", "--model_dir", trained, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert NOT_BUILT not in proc.stderr + proc.stdout, proc.stderr
    assert os.path.exists(os.path.join(out, "student", "saved_model.pb"))
    assert sorted(os.listdir(out)) == ["student"]
    assert proc.stdout.splitlines()[-1] == f"student: {out}/student"

    again = _run("pfd_tf.cli.export", "--model_dir", trained, "--out", out)  # a previous export: replaced, said so
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines()[-1] == f"student: {out}/student (replaced the previous export)"


def _savedmodel(tmp_path, trained) -> str:
    path = str(tmp_path / "a_savedmodel")
    shutil.copytree(os.path.join(trained, "export", "student"), path)
    return path


def _unrelated(tmp_path, trained) -> str:
    path = str(tmp_path / "my_models")
    os.makedirs(os.path.join(path, "notes"))
    with open(os.path.join(path, "README.txt"), "w") as f:
        f.write("mine\n")
    return path


def _a_file(tmp_path, trained) -> str:
    path = str(tmp_path / "model.bin")
    with open(path, "w") as f:
        f.write("x")
    return path


@pytest.mark.parametrize("make,message", [
    (_savedmodel, "is itself a SavedModel; --out names the export directory"),
    (_unrelated, "holds README.txt, notes, which no export wrote"),
    (_a_file, "a file; --out names an export directory"),
], ids=["a SavedModel", "an unrelated directory", "a file"])
def test_an_out_that_is_not_an_export_directory_is_refused_and_left_alone(trained, tmp_path, make, message):
    out = make(tmp_path, trained)
    before = snapshot(str(tmp_path))
    proc = _run("pfd_tf.cli.export", "--model_dir", trained, "--out", out)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"pfd-export: error: --out {out}: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(str(tmp_path)) == before


def test_a_relative_model_dir_and_out_export_the_run(trained, tmp_path):
    """`cd` into the run's parent and name both by relative paths, as a user types them (the state file's
    checkpoint was once joined to the relative directory twice: run/checkpoints/run/checkpoints/ckpt-N)."""
    parent, name = os.path.split(trained)
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.export", "--model_dir", name, "--out", "relative_export"],
                          capture_output=True, text=True, timeout=600, cwd=parent, env={**os.environ, "PYTHONPATH": ROOT})
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert os.path.exists(os.path.join(parent, "relative_export", "student", "saved_model.pb"))
    finally:
        shutil.rmtree(os.path.join(parent, "relative_export"), ignore_errors=True)
