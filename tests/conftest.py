"""Shared fixtures: a tiny CSV world written by the tests themselves."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)

COLUMNS = ["day", "user_id", "item_id", "device", "price", "tags", "dwell", "cart", "label"]


def write_tiny_world(directory: str, rows: int = 1200, seed: int = 0, train_files: int = 2) -> str:
    """Writes train/test CSVs and a config; returns the config path.

    The label depends on the user, the price and an event-level intent that
    only the privileged `dwell` and `cart` columns reveal.
    """
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50, rows)
    items = rng.integers(0, 80, rows)
    price = np.round(np.exp(rng.normal(3, 1, rows)), 2)
    user_bias = rng.normal(0, 1, 50)[users]
    intent = rng.normal(0, 1.5, rows)
    logit = user_bias - 0.4 * (np.log(price) - 3) + intent - 1.0
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    dwell = np.round(np.exp(0.6 * intent + 0.5 * np.log(price) + rng.normal(0, 0.3, rows)), 3)
    cart = (intent + rng.normal(0, 0.5, rows) > 1).astype(int)
    device = rng.choice(["ios", "android", "pc"], rows)
    tags = ["|".join(str(t) for t in rng.integers(0, 30, rng.integers(0, 6))) for _ in range(rows)]
    day = np.where(np.arange(rows) < rows * 0.8, rng.integers(0, 4, rows), 4)

    os.makedirs(os.path.join(directory, "train"), exist_ok=True)
    os.makedirs(os.path.join(directory, "test"), exist_ok=True)
    lines = {}
    for i in range(rows):
        values = [day[i], users[i], items[i], device[i], price[i], tags[i], dwell[i], cart[i], label[i]]
        path = "test/test.csv" if day[i] == 4 else f"train/part-{i % train_files}.csv"
        lines.setdefault(path, []).append(",".join(str(v) for v in values))
    for path, body in lines.items():
        with open(os.path.join(directory, path), "w") as f:
            f.write(",".join(COLUMNS) + "\n" + "\n".join(body) + "\n")

    config = {
        "data": {"train_files": ["train/*.csv"], "eval_files": ["test/*.csv"], "label": "label"},
        "features": [
            {"name": "user_id", "kind": "categorical", "hash_buckets": 100, "dim": 4, "side": "user"},
            {"name": "item_id", "kind": "categorical", "hash_buckets": 160, "dim": 4, "side": "item"},
            {"name": "device", "kind": "categorical", "vocabulary": ["ios", "android", "pc"], "dim": 2},
            {"name": "price", "kind": "numeric", "boundaries": [5.0, 10.0, 20.0, 40.0, 80.0], "dim": 3, "side": "item"},
            {"name": "tags", "kind": "sequence", "hash_buckets": 40, "max_len": 4, "dim": 3, "side": "user"},
            {"name": "dwell", "kind": "numeric", "boundaries": [1.0, 2.0, 4.0, 8.0], "dim": 3, "role": "privileged"},
            {"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 2, "role": "privileged"},
        ],
        "model": {"student_tower": [16, 8], "teacher_tower": [16, 8], "big_teacher_tower": [32, 16, 8]},
        "distill": {"mode": "pfd", "lambda": 0.5, "swap_step": 4},
        "train": {"batch_size": 64, "steps": 12, "log_every": 6, "warmup_steps": 5, "eval_batch_size": 128, "learning_rate": 0.05},
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def as_two_tasks(raw: dict) -> dict:
    """A tiny-world config (as a dict) with two binary tasks, `buy` (the label) and `cart` (the `cart` column,
    no longer a feature); changed in place and returned."""
    raw["features"] = [f for f in raw["features"] if f["name"] != "cart"]
    del raw["data"]["label"]
    raw["tasks"] = [{"name": "buy", "label": "label"}, {"name": "cart", "label": "cart"}]
    return raw


def write_train_test(directory, columns, rows, test) -> None:
    """`train/part-0.csv` and `test/test.csv` under `directory`: `rows` (lists of values) split by the mask `test`."""
    os.makedirs(os.path.join(directory, "train"), exist_ok=True)
    os.makedirs(os.path.join(directory, "test"), exist_ok=True)
    for path, where in (("train/part-0.csv", ~test), ("test/test.csv", test)):
        with open(os.path.join(directory, path), "w") as f:
            f.write(",".join(columns) + "\n")
            for i in np.flatnonzero(where):
                f.write(",".join(str(v) for v in rows[i]) + "\n")


@pytest.fixture(scope="session")
def tiny_config_path(tmp_path_factory) -> str:
    return write_tiny_world(str(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A finished single-machine pfd-train run on the tiny world: (config, model_dir, metrics)."""
    from pfd_tf import config as config_lib
    from pfd_tf.trainer import train

    directory = str(tmp_path_factory.mktemp("trained"))
    config = config_lib.load(write_tiny_world(directory))
    model_dir = os.path.join(directory, "run")
    metrics = train(config, model_dir, verbose=0)
    return config, model_dir, metrics


def pfd_train_cli(config_path: str, model_dir: str, raw: dict | None = None) -> subprocess.CompletedProcess:
    """Runs the real `python -m pfd_tf.cli.train` on `config_path` (first rewritten as `raw`, when given) with
    this checkout first on the path; asserts it exits 0."""
    if raw is not None:
        with open(config_path, "w") as f:
            yaml.safe_dump(raw, f)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", config_path, "--model_dir", model_dir],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": root})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
