"""`pfd-data --scenario multitask`: the two-task like/buy world (`pfd_tf.datasets.multitask`) and its configs.

`config.yaml` trains CrossDistil ("Cross-Task Knowledge Distillation in
Multi-Task Recommendation", AAAI 2022) on a PLE student: the augmented
ranking tasks like+ and buy+ over each task's tower, calibrated and
error-corrected, as the soft labels of like and buy (`distill.crossdistil`,
`pfd_tf.distill.crossdistil_part`).  `config_pfd.yaml`, described below,
distils a PLE teacher that reads the privileged features instead, and
`config_mtl.yaml` is the PFD paper's MTL baseline.


`config_pfd.yaml` trains two tasks, `like` (served, CrossDistil's task A) and
`buy` (task B), on a PLE student over the regular features (Tang et al.
2020; `pfd_tf.models.zoo.backbone`), distilled from a co-trained PLE teacher
that also reads the privileged post-event features (dwell time, viewed the
comments): PFD (Xu et al. 2020) on a multi-task backbone.  The soft label
is the teacher's own task's (source_task = target_task); CrossDistil's
cross-task terms are not in it.  The held-out metrics report each task's
AUC and log loss and the Multi-AUC of Eq. (12) of CrossDistil
(`pfd_tf.evaluation_multi_auc`).
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import yaml

from pfd_tf.datasets.crossdistil_config import CROSSDISTIL
from pfd_tf.datasets.multitask import (BUY, DEFAULT_ROWS, LIKE, MULTITASK_COLUMNS, MULTITASK_FEATURES, MultitaskWorld,
                                       multitask_features, simulate_multitask)
from pfd_tf.datasets.mtl_baseline_config import write_mtl_baseline_config
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, ConfigDumper, FlowDict, as_strings, write_days

TEACHER = "pfd"
# PLE (two levels) for the student and the teacher alike; each task's tower is `tower`.
BACKBONE = {"model": "ple", "levels": 2, "experts": 1, "shared_experts": 1, "expert_units": [128], "tower": [64]}
TASKS = [{"name": LIKE, "label": LIKE}, {"name": BUY, "label": BUY}]
LAMBDA = 0.5  # the soft label's weight, the CVR config's lambda (Eq. (5) of the PFD paper)
SWAP_FRACTION = 0.125  # the soft label is off for the first eighth of the run (the warm-up of Algorithm 1)
LEARNING_RATE = 1.6
"""Adagrad's peak rate (batches of 1,024, 4 epochs), chosen on the validation world (seed 100, 50,000 rows) among
0.1, 0.4 and 1.6, by the student's held-out AUC of each task: like 0.564 / 0.620 / 0.625, buy 0.587 / 0.703 / 0.721
(the PLE teacher on all features: like 0.730 / 0.788 / 0.791, buy 0.764 / 0.836 / 0.843).  The CVR world's rate."""


def backbone(**extra) -> FlowDict:
    """A fresh copy of BACKBONE (its own lists: YAML would write shared ones as anchors)."""
    return FlowDict(**extra, **{k: list(v) if isinstance(v, list) else v for k, v in BACKBONE.items()})


def soft_label_terms() -> list[dict]:
    """The teacher's soft label of each task into the student's same task (source_task = target_task)."""
    return [FlowDict(kind="soft_label", teacher=TEACHER, weight=LAMBDA, temperature=1.0, source_task=task["name"],
                     target_task=task["name"], schedule=FlowDict(start_fraction=SWAP_FRACTION)) for task in TASKS]


def multitask_config(columns: Mapping[str, np.ndarray], world: MultitaskWorld, seed: int) -> dict:
    """The config.yaml of a simulated log: the other worlds' data and train sections, `tasks:` like and buy,
    a PLE student and a PLE teacher on regular + privileged features."""
    base = run_config(multitask_features(columns, world), 0, seed, learning_rate=LEARNING_RATE)
    data = {k: v for k, v in base["data"].items() if k != "label"}
    return {"data": data, "tasks": [FlowDict(t) for t in TASKS], "features": base["features"],
            "student": backbone(), "teachers": [backbone(name=TEACHER, features="all")],
            "model": {"sharing": "shared"}, "distill": {"mode": "teachers", "terms": soft_label_terms()},
            "train": base["train"]}


PFD_CONFIG = "config_pfd.yaml"
CROSSDISTIL_LEARNING_RATE = 0.4
"""Adagrad's peak rate of the CrossDistil config (batches of 1,024, 4 epochs, PLE), chosen on the validation world
(seed 100, 50,000 rows) by the held-out AUC of the two tasks: like / buy 0.588 / 0.651 at 0.1, 0.606 / 0.663 at
0.4, 0.563 / 0.321 at 1.6 (docs/results.md, "CrossDistil on PLE")."""


CALIBRATION_LEARNING_RATE = 0.1
"""gamma_2, the SGD rate of Platt's P, Q (Eq. (8)-(9)), chosen on the validation world (seed 100, 50,000 rows, rate
0.4) by the held-out log loss of both tasks: at 0.01 (the section's default) P, Q barely move in 171 steps, the
soft labels stay uncalibrated and the student's log loss was above the constant predictor's (like 0.5081, buy
0.1889 against 0.5048, 0.1851); at 0.1 below it (0.4980, 0.1820; AUC 0.589, 0.655); at 0.3 0.5048, 0.1782
(AUC 0.558, 0.668); at 1.0 the run diverged."""


def crossdistil_config(pfd: Mapping) -> dict:
    """The CrossDistil config of the world whose PFD config is `pfd`: the same data, features, tasks and PLE
    student, no teacher (the augmented tasks teach), `distill.crossdistil` with the paper's defaults."""
    train = {**pfd["train"], "learning_rate": CROSSDISTIL_LEARNING_RATE}
    section = FlowDict({**CROSSDISTIL, "calibration_learning_rate": CALIBRATION_LEARNING_RATE})
    return {"data": pfd["data"], "tasks": pfd["tasks"], "features": pfd["features"], "student": backbone(),
            "distill": {"mode": "baseline", "crossdistil": section}, "train": train}


def write_pfd_config(out_dir: str, config: Mapping) -> str:
    path = os.path.join(out_dir, PFD_CONFIG)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# PFD on PLE (a PLE teacher on regular + privileged features): pfd-train --config {PFD_CONFIG} "
                "--model_dir runs/pfd\n")
        yaml.dump(dict(config), f, Dumper=ConfigDumper, sort_keys=False, default_flow_style=None, width=1 << 16)
    return path


def generate_multitask_world(out_dir: str, rows: int = DEFAULT_ROWS, seed: int = 0, days: int = 8,
                             **world) -> str:
    """Simulates the two-task world, writes its day CSVs and config.yaml under `out_dir`; returns the config's
    path.  `world` overrides `MultitaskWorld` fields."""
    world = MultitaskWorld.for_rows(rows, days, **world)
    columns = simulate_multitask(world, seed)
    by_name = {c.name: c for c in MULTITASK_FEATURES}
    text = [as_strings(by_name.get(k), columns[k]) for k in MULTITASK_COLUMNS]
    lines = [",".join(r) for r in zip(*text)]
    config = multitask_config(columns, world, seed)
    os.makedirs(out_dir, exist_ok=True)
    write_mtl_baseline_config(out_dir, config, columns, columns[DAY] < world.days - 1)  # before config.yaml
    write_pfd_config(out_dir, config)
    return write_days(out_dir, ",".join(MULTITASK_COLUMNS), lines, columns[DAY], world.days,
                      crossdistil_config(config))
