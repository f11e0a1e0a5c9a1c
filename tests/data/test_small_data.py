"""A run too short, or on too few rows per field, to learn from warns once on stderr with the recipe (`pfd_tf.small_data`)."""
from __future__ import annotations

import dataclasses
import os

import pytest

from conftest import write_tiny_world
from pfd_tf import config as config_lib
from pfd_tf.cli.train import run_task
from pfd_tf.small_data import MIN_ROWS_PER_FIELD, MIN_STEPS, RECIPE_BATCH, small_data_warning

HEADLINE = "WARNING: small data"


def test_a_short_run_on_few_rows_warns_once_with_the_recipe(tmp_path, capsys):
    """write_tiny_world: 960 training rows, 5 student fields (192 each), 12 steps."""
    config = write_tiny_world(str(tmp_path))
    assert run_task(config, str(tmp_path / "run"), ["distill.mode=baseline"]) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert err.count(HEADLINE) == 1, err
    assert HEADLINE not in captured.out
    assert f"it trains 12 steps (fewer than {MIN_STEPS}): batches of 64 over 960 training rows: too few updates" in err
    assert f"it has 192 training rows per student field (960 rows, 5 fields; fewer than {MIN_ROWS_PER_FIELD})" in err
    # 2 epochs of 256 would be 8 steps here: the recipe asks for as many epochs as 50 steps need
    assert f"--set train.batch_size={RECIPE_BATCH} --set train.epochs=14 (52 steps here)" in err


def test_enough_steps_and_rows_do_not_warn(tmp_path, capsys):
    """3,200 rows: 2,560 training rows over 5 fields (512 each), 50 steps."""
    config = write_tiny_world(str(tmp_path), rows=3200)
    overrides = ["distill.mode=baseline", f"train.steps={MIN_STEPS}", f"train.log_every={MIN_STEPS}"]
    assert run_task(config, str(tmp_path / "run"), overrides) == 0
    assert HEADLINE not in capsys.readouterr().err


@pytest.mark.parametrize("steps,rows,reasons", [
    (MIN_STEPS - 1, 5 * MIN_ROWS_PER_FIELD, ["steps (fewer than"]),
    (MIN_STEPS, 5 * MIN_ROWS_PER_FIELD - 1, ["rows per student field"]),
    (MIN_STEPS - 1, 5 * MIN_ROWS_PER_FIELD - 1, ["steps (fewer than", "rows per student field"]),
    (MIN_STEPS, 5 * MIN_ROWS_PER_FIELD, []),
])
def test_the_thresholds(tiny_config_path, steps, rows, reasons):
    """Each measure warns below its floor and not at it (the tiny world's student reads 5 fields)."""
    config = config_lib.load(tiny_config_path)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=steps))
    assert len(config.student_features) == 5
    text = small_data_warning(config, rows)
    if not reasons:
        assert text is None
        return
    said = [line for line in text.splitlines() if line.startswith("  - ")]
    assert len(said) == len(reasons) and all(reason in line for reason, line in zip(reasons, said)), text


def test_the_readme_recipe_on_8000_criteo_rows_scores_above_0_65_through_pfd_eval(tmp_path):
    """The README's small-data recipe, as a user runs it: configs/criteo.yaml on 8,000 Criteo-format rows
    (`criteo_avazu_files.write_criteo`: 6,400 training rows, 1,600 held out) with batches of 256 for two
    epochs, then `pfd-eval` on the held-out file: it must score what metrics.json says, and AUC >= 0.65."""
    import json
    import shutil
    import subprocess
    import sys

    from criteo_avazu_files import write_criteo

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(tmp_path / "configs")
    shutil.copy(os.path.join(root, "configs", "criteo.yaml"), tmp_path / "configs" / "criteo.yaml")
    write_criteo(str(tmp_path / "data" / "criteo"), rows=8000, seed=0)
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = str(tmp_path / "runs" / "criteo_small")
    train = subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", str(tmp_path / "configs" / "criteo.yaml"),
                            "--model_dir", run, "--set", f"train.batch_size={RECIPE_BATCH}", "--set", "train.epochs=2"],
                           capture_output=True, text=True, timeout=600, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert "steps (fewer than" not in train.stderr  # 50 steps: no longer too short (few rows per field still warns)
    scores = str(tmp_path / "scores.json")
    score = subprocess.run([sys.executable, "-m", "pfd_tf.cli.eval", "--model_dir", run,
                            "--files", str(tmp_path / "data" / "criteo" / "eval" / "*.txt"), "--out", scores],
                           capture_output=True, text=True, timeout=600, env=env)
    assert score.returncode == 0, score.stderr[-3000:]
    with open(scores) as f:
        scored = json.load(f)
    with open(os.path.join(run, "metrics.json")) as f:
        reported = json.load(f)
    assert scored["rows"] == 1600
    assert scored["student"]["auc"] == pytest.approx(reported["student"]["auc"], abs=1e-9)
    assert scored["student"]["auc"] >= 0.65, scored["student"]
