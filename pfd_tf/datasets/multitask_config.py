"""`pfd-data --scenario multitask`: the two-task like/buy world (`pfd_tf.datasets.multitask`) and its config.yaml.

The config trains two tasks, `like` (served, CrossDistil's task A) and
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

from typing import Mapping

import numpy as np

from pfd_tf.datasets.multitask import (BUY, DEFAULT_ROWS, LIKE, MULTITASK_COLUMNS, MULTITASK_FEATURES, MultitaskWorld,
                                       multitask_features, simulate_multitask)
from pfd_tf.datasets.mtl_baseline_config import write_mtl_baseline_config
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, FlowDict, as_strings, write_days

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
    """The teacher's soft label into the student, on the served task (`like`).

    The `buy` task's soft label (source_task = target_task = buy) joins when
    the distillation terms route by task (issue 21: the `crossdistil`
    change); until then a term reads and trains the served task only.
    """
    return [FlowDict(kind="soft_label", teacher=TEACHER, weight=LAMBDA, temperature=1.0,
                     schedule=FlowDict(start_fraction=SWAP_FRACTION))]


def multitask_config(columns: Mapping[str, np.ndarray], world: MultitaskWorld, seed: int) -> dict:
    """The config.yaml of a simulated log: the other worlds' data and train sections, `tasks:` like and buy,
    a PLE student and a PLE teacher on regular + privileged features."""
    base = run_config(multitask_features(columns, world), 0, seed, learning_rate=LEARNING_RATE)
    data = {k: v for k, v in base["data"].items() if k != "label"}
    return {"data": data, "tasks": [FlowDict(t) for t in TASKS], "features": base["features"],
            "student": backbone(), "teachers": [backbone(name=TEACHER, features="all")],
            "model": {"sharing": "shared"}, "distill": {"mode": "teachers", "terms": soft_label_terms()},
            "train": base["train"]}


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
    write_mtl_baseline_config(out_dir, config, columns, columns[DAY] < world.days - 1)  # before config.yaml
    return write_days(out_dir, ",".join(MULTITASK_COLUMNS), lines, columns[DAY], world.days, config)
