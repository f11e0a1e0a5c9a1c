"""The PFD paper's MTL baseline (Section 5.3) as a config, written beside a world's config.yaml: `config_mtl.yaml`.

"We adopt the hard parameter sharing version of MTL, where all tasks share
first hidden layer and independently predict each task with 2-layers' MLP.
We adopt the mean squared error for the auxiliary continuous regression
tasks, e.g. predicting the dwell time, and the log-loss for the auxiliary
binary prediction tasks, e.g. predicting whether viewing the user comments
or not."  From a world's config (its label or `tasks:`, its features, its
student tower), `mtl_baseline_config` makes that config:

- the world's own tasks first (the first one served), then one auxiliary
  task per privileged column: `regression` for a numeric one, learning its
  standardized log1p (`tasks[i].transform: log1p`, `center` and `scale` the
  mean and std of log1p(y) on the train days: "balanced" losses, each near 1
  at the start), `binary` for a 0/1 column; weight `AUXILIARY_WEIGHT` each,
  from the paper's grid {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2};
- no privileged feature (the columns are labels now) and no teacher
  (`distill.mode: baseline`);
- a `shared_bottom` student: the first layer of `model.student_tower`
  shared (`expert_units`), the rest a tower per task (`tower`): the paper's
  (512, 256, 128) becomes a 512-wide bottom and (256, 128) per task.

Every task's head is exported (`probability_<task>`, `prediction_<task>`),
the served `probability` being the world's own first task: an auxiliary
output predicts a privileged feature from serving-time features only, so
serving it leaks nothing.
"""
from __future__ import annotations

import copy
import os
from typing import Mapping

import numpy as np
import yaml

from pfd_tf.datasets.writer import ConfigDumper, FlowDict

AUXILIARY_WEIGHT = 0.1
"""Each auxiliary task's loss weight: one value of the paper's grid {0.01, ..., 2} (Section 5.3).  Not tuned on an
evaluation world; pfd-compare or `--set tasks[i].weight=` changes it."""
MTL_CONFIG = "config_mtl.yaml"


def auxiliary_task(feature: Mapping, values: np.ndarray) -> dict | None:
    """The auxiliary task predicting privileged `feature` from its train-day `values`: regression for a numeric
    column, binary for a 0/1 column; None for any other column (an id: nothing to regress)."""
    name = feature["name"]
    if feature.get("kind") == "numeric":
        logs = np.log1p(np.asarray(values, dtype=np.float64))
        return FlowDict(name=name, label=name, kind="regression", weight=AUXILIARY_WEIGHT, transform="log1p",
                        center=round(float(logs.mean()), 6), scale=round(float(max(logs.std(), 1e-6)), 6))
    if list(feature.get("vocabulary") or ()) == ["0", "1"]:
        return FlowDict(name=name, label=name, kind="binary", weight=AUXILIARY_WEIGHT)
    return None


def mtl_baseline_config(config: Mapping, train_columns: Mapping[str, np.ndarray]) -> dict:
    """The MTL baseline of `config` (a world's config.yaml mapping); `train_columns`: column -> its train-day
    values, for every privileged column."""
    out = copy.deepcopy(dict(config))
    data = dict(out["data"])
    label = data.pop("label", None)
    tasks = list(out.get("tasks") or [FlowDict(name=label, label=label)])
    privileged = [f for f in out["features"] if f.get("role") == "privileged"]
    auxiliary = [task for task in (auxiliary_task(f, train_columns[f["name"]]) for f in privileged) if task]
    tower = list((out.get("model") or {}).get("student_tower") or [512, 256, 128])
    return {"data": data, "tasks": tasks + auxiliary,
            "features": [f for f in out["features"] if f.get("role") != "privileged"],
            "student": FlowDict(model="shared_bottom", expert_units=tower[:1], tower=tower[1:]),
            "model": out.get("model", {}), "distill": {"mode": "baseline"}, "train": out["train"]}


def write_mtl_baseline_config(out_dir: str, config: Mapping, columns: Mapping[str, np.ndarray],
                              train: np.ndarray) -> str:
    """Writes `config_mtl.yaml` (the MTL baseline of `config`) into `out_dir`; `columns`: the world's columns,
    `train`: the train days' rows (a mask).  Returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    privileged = [f["name"] for f in config["features"] if f.get("role") == "privileged"]
    mtl = mtl_baseline_config(config, {name: np.asarray(columns[name])[train] for name in privileged})
    path = os.path.join(out_dir, MTL_CONFIG)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# The PFD paper's MTL baseline (Section 5.3): pfd-train --config {MTL_CONFIG} --model_dir runs/mtl "
                "(from this directory)\n")
        yaml.dump(mtl, f, Dumper=ConfigDumper, sort_keys=False, default_flow_style=None, width=1 << 16)
    return path
