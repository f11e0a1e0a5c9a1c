"""The `config.yaml` that trains CrossDistil on the two-task world (`pfd_tf.datasets.multitask`).

"Cross-Task Knowledge Distillation in Multi-Task Recommendation" (AAAI
2022) on `like` (task A, its label first in the quadruplets) and `buy`
(task B): a DNN student with a head per task over its shared body (hard
parameter sharing), the augmented tasks like+ and buy+ on the same body, and
`distill.crossdistil` (`pfd_tf.config.crossdistil`) with the paper's
defaults (beta1 = beta2 = 1, tau = 1, m = 0) and alpha = 0.5.  A multi-task
backbone (PLE, MMoE) can replace the DNN once it is a student model; the
section does not change.

`crossdistil_run_config(features, seed)` is for the world's writer (`pfd-data
--scenario multitask`) to call with `multitask_features(...)`;
`write_crossdistil_world` writes the world with that config (tests, benchmarks).
"""
from __future__ import annotations

import os

import yaml

from pfd_tf.datasets.multitask import (BUY, DEFAULT_ROWS, LIKE, MultitaskWorld, multitask_features,
                                       simulate_multitask, write_multitask_csvs)
from pfd_tf.datasets.writer import ConfigDumper

EPOCHS = 2
LEARNING_RATE = 0.4
"""Adagrad's peak rate, chosen on the validation world (seed 100, 50,000 rows, 2 epochs) by
`benchmarks/crossdistil_table.py`: mean held-out AUC of the two tasks 0.6386 at 0.1, 0.6505 at 0.4; at 1.6
the run diverged (docs/results.md, "CrossDistil on the two-task world")."""
CROSSDISTIL = {"tasks": [LIKE, BUY], "alpha": 0.5, "beta1": 1.0, "beta2": 1.0, "ranking_weight": 1.0,
               "temperature": 1.0, "margin": 0.0, "calibration_learning_rate": 0.01}


def crossdistil_run_config(features: list[dict], seed: int, epochs: float = EPOCHS,
                           learning_rate: float = LEARNING_RATE, crossdistil: dict | None = None) -> dict:
    """The full config.yaml: the two tasks, a DNN student, CrossDistil on it (`crossdistil` overrides keys of
    the section; `crossdistil={}` keeps the defaults; pass `None` for the defaults too)."""
    section = {**CROSSDISTIL, **(crossdistil or {})}
    return {
        "data": {"format": "csv", "train_files": ["train/*.csv"], "eval_files": ["test/*.csv"]},
        "features": features,
        "tasks": [{"name": LIKE, "label": LIKE}, {"name": BUY, "label": BUY}],
        "model": {"student_tower": [128, 64]},
        "distill": {"mode": "baseline", "crossdistil": section},
        "train": {"batch_size": 1024, "epochs": epochs, "learning_rate": learning_rate, "warmup_fraction": 0.1,
                  "seed": int(seed)},
    }


def write_crossdistil_world(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8,
                            **config) -> str:
    """The two-task world under `out_dir` (`generate_multitask`'s files) and its CrossDistil `config.yaml`
    (`config`: `crossdistil_run_config`'s keywords); returns the config's path, written last."""
    world = MultitaskWorld.for_rows(rows, days)
    columns = simulate_multitask(world, seed)
    write_multitask_csvs(columns, world, out_dir)
    path = os.path.join(out_dir, "config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(crossdistil_run_config(multitask_features(columns, world), seed, **config), f,
                  Dumper=ConfigDumper, sort_keys=False, default_flow_style=None, width=1 << 16)
    return path
