"""A world whose every row carries its own id, and runs that count which rows they trained on, for
`test_visitation*.py` and `test_grouped.py`.

Every row has its id (`rid`, a categorical feature with one vocabulary entry per row), and
`train.count_visits: rid` makes the train step count the ids it trained on (`metrics.json`'s `visits`, the
checkpoint's `model/visits`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH = 64


def write_rid_world(directory: str, files: int = 16, rows_per_file: int = 128) -> tuple[str, int]:
    """`files` CSV files of rows (rid, user, label), and a held-out file; returns (config path, rows)."""
    rows = files * rows_per_file
    os.makedirs(os.path.join(directory, "train"), exist_ok=True)
    os.makedirs(os.path.join(directory, "test"), exist_ok=True)
    for path, ids in [(f"train/part-{k:02d}.csv", range(k * rows_per_file, (k + 1) * rows_per_file))
                      for k in range(files)] + [("test/held.csv", range(rows_per_file))]:
        with open(os.path.join(directory, path), "w") as f:
            f.write("rid,user,label\n")
            for rid in ids:
                f.write(f"{rid},u{rid % 13},{(rid * 7) % 3 == 0:d}\n")
    config = {
        "data": {"train_files": ["train/*.csv"], "eval_files": ["test/held.csv"], "label": "label"},
        "features": [
            {"name": "rid", "kind": "categorical", "dtype": "int64", "vocabulary": [str(i) for i in range(rows)],
             "dim": 2},
            {"name": "user", "kind": "categorical", "hash_buckets": 16, "dim": 2},
        ],
        "model": {"student_tower": [4]},
        "distill": {"mode": "baseline"},
        "train": {"batch_size": BATCH, "steps": rows // BATCH, "log_every": 8, "learning_rate": 0.05,
                  "count_visits": "rid"},
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path, rows


def visits(model_dir: str) -> dict[int, int]:
    """Number of row ids trained on 0, 1, 2, ... times (the out-of-vocabulary slot left out)."""
    with open(os.path.join(model_dir, "metrics.json")) as f:
        by_count = {int(k): v for k, v in json.load(f)["visits"]["ids_by_count"].items()}
    by_count[0] -= 1  # id 0 is the vocabulary's out-of-vocabulary slot, never a row
    return {k: v for k, v in by_count.items() if v}


def train_cli(config: str, model_dir: str, *sets: str) -> None:
    command = [sys.executable, "-m", "pfd_tf.cli.train", "--config", config, "--model_dir", model_dir]
    for item in sets:
        command += ["--set", item]
    proc = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def launch_cli(config: str, model_dir: str, workers: int, *sets: str, timeout: int = 300) -> str:
    command = [sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir,
               "--workers", str(workers), "--ps", "1", "--noevaluator"]
    for item in sets:
        command += ["--set", item]
    proc = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout
