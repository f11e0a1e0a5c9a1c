"""Every config we ship is a promise: trained briefly, its student beats the constant predictor on held-out rows.

The configs are those `pfd-data` writes (every scenario of
`pfd_tf.data.scenarios.SCENARIOS`, so a new scenario is covered without a
change here), on worlds 0, 1 and 2, and every file in `configs/`.  Each
trains with its own rates, model and optimizer on a smaller world
(`--rows`); the student must score, on the held-out rows, a log loss below
the constant predictor's (the training rows' click or purchase rate, as a
probability for every held-out row) and an AUC above 0.5.  A run that
diverges (a loss of 1e10 that still exits 0) fails here.

Runs go through `pfd_tf.trainer.train`, what `pfd-train` runs, in this
process and without the SavedModel export (the export is tested elsewhere;
here it would only add its time).
"""
from __future__ import annotations

import csv
import glob
import math
import os

import pytest

from criteo_avazu_files import write_avazu, write_criteo
from pfd_tf import config as config_lib
from pfd_tf.data.scenarios import SCENARIOS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = (0, 1, 2)
# Rows of each pfd-data world (train and test together): the fewest at which the shipped model learns
# something on every seed; a scenario not listed gets DEFAULT_ROWS.
ROWS = {"cvr": 10_000, "ctr": 10_000, "ensemble": 10_000}
DEFAULT_ROWS = 10_000
# configs/: the data each file reads (what the test writes in its place) and what changes for a small world.
SHIPPED = {
    "cvr_synthetic.yaml": ("cvr", []),
    # The paper's batch of 2,000 over one epoch is 3 steps on 6,400 rows: the README's small-data recipe.
    "criteo.yaml": ("criteo", ["train.batch_size=256", "train.epochs=2"]),
    "avazu.yaml": ("avazu", ["train.batch_size=256", "train.epochs=2"]),
}
SAMPLE_ROWS = 8_000  # Criteo- and Avazu-format files: the size of the public samples


def _labels(config: config_lib.Config, split: str) -> list[int]:
    """The label column of the split's files (CSV, with a header or `data.columns`)."""
    data = config.data
    globs = data.train_files if split == "train" else data.eval_files
    paths = sorted(p for g in globs for p in glob.glob(config.resolve_path(g)))
    assert paths, globs
    labels = []
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.reader(f, delimiter=data.csv_delimiter)
            columns = list(data.columns) or next(reader)
            index = columns.index(data.label)
            labels += [int(float(row[index])) for row in reader if row]
    return labels


def _constant_logloss(config: config_lib.Config) -> float:
    """Held-out log loss of predicting the training rows' positive rate for every row."""
    train = _labels(config, "train")
    rate = sum(train) / len(train)
    held_out = _labels(config, "eval")
    positives = sum(held_out)
    return -(positives * math.log(rate) + (len(held_out) - positives) * math.log(1 - rate)) / len(held_out)


def _assert_beats_the_constant(config: config_lib.Config, model_dir: str) -> None:
    from pfd_tf.trainer import train

    student = train(config, model_dir, verbose=0, export=False)["student"]
    constant = _constant_logloss(config)
    assert student["logloss"] < constant and student.get("auc", 0.0) > 0.5, (
        f"held-out student log loss {student['logloss']:.4f} (the constant predictor's: {constant:.4f}), "
        f"AUC {student.get('auc')}")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_what_pfd_data_writes_learns(tmp_path, scenario, seed):
    path = SCENARIOS[scenario](str(tmp_path / "world"), rows=ROWS.get(scenario, DEFAULT_ROWS), seed=seed)
    _assert_beats_the_constant(config_lib.load(path), str(tmp_path / "run"))


def _world_for(kind: str, directory: str) -> list[str]:
    """Writes the data a shipped config reads into `directory`; returns the overrides pointing at it."""
    if kind == "criteo":
        write_criteo(directory, rows=SAMPLE_ROWS, seed=0)
        return [f"data.train_files=[{directory}/train/*.txt]", f"data.eval_files=[{directory}/eval/*.txt]"]
    if kind == "avazu":
        write_avazu(directory, rows=SAMPLE_ROWS, seed=0)
        return [f"data.train_files=[{directory}/train/*.csv]", f"data.eval_files=[{directory}/eval/*.csv]"]
    SCENARIOS[kind](directory, rows=ROWS.get(kind, DEFAULT_ROWS), seed=0)
    return [f"data.train_files=[{directory}/train/*.csv]", f"data.eval_files=[{directory}/test/*.csv]"]


def test_every_file_in_configs_is_covered():
    assert sorted(SHIPPED) == sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml")))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_config_learns(tmp_path, name):
    kind, small = SHIPPED[name]
    overrides = _world_for(kind, str(tmp_path / "data")) + small
    config = config_lib.load(os.path.join(ROOT, "configs", name), overrides)
    _assert_beats_the_constant(config, str(tmp_path / "run"))
