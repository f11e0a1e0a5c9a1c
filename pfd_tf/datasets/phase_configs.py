"""KD-DAGFM's three phases as three configs of the same trainer, written beside a world's config.yaml.

"Directed Acyclic Graph Factorization Machines for CTR Prediction via
Knowledge Distillation" (Tian et al., WSDM 2023) pre-trains the teacher,
distils the DAGFM student from it, then fine-tunes the student on the labels
alone.  From a config.yaml that co-trains teachers with a student, this
writes, chained by checkpoints as Ind&Async is (`pfd_tf.distill.pretrained`,
`pfd_tf.distill.warm_start`):

- `config_teacher.yaml`: the teachers alone (`distill.teacher_only`), into `runs/teacher`, for the
  length the world chose for them (`teacher_train`);
- `config_distill.yaml`: the student distilled from them, frozen, restored from `runs/teacher`
  (`teachers[i].checkpoint`), into `runs/distill`;
- `config_finetune.yaml`: the student alone on the labels (`distill.mode: baseline`), warm-started
  from `runs/distill`'s student and tables (`model.init_from`), with `FINETUNE_TRAIN`'s length and rate.

The checkpoints' paths are relative to the config files' directory (the
world's); each file's first line is the command that trains it.
"""
from __future__ import annotations

import copy
import os
from typing import Mapping

import yaml

from pfd_tf.datasets.writer import ConfigDumper

TEACHER_RUN, DISTILL_RUN, FINETUNE_RUN = "runs/teacher", "runs/distill", "runs/finetune"
FINETUNE_TRAIN = {"epochs": 1, "learning_rate": 0.0003, "warmup_fraction": 0.1}
"""The fine-tune's length and peak rate (its warm-up starts afresh: a new optimisation), with the interactions
world's Adam, chosen on world 100: 1 epoch at 0.0003, 0.001 and 0.003 after a 5-epoch distillation gave 0.7760,
0.7706, 0.7658 (the distilled student 0.7745; docs/results.md, "Why DAGFM did not learn the interactions
world").  Under Adagrad it had been 2 epochs at 0.4 ("KD-DAGFM's fine-tune phase")."""


def phase_configs(config: Mapping, teacher_train: Mapping | None = None) -> dict[str, dict]:
    """File name -> config of each phase, from `config` (a config.yaml's mapping with a `teachers:` list).

    `teacher_train`: keys of the teacher phase's `train:` section that differ from `config`'s (a teacher
    that over-fits sooner than its student trains for fewer epochs)."""
    teacher = copy.deepcopy(dict(config))
    teacher["distill"] = {**teacher.get("distill", {}), "teacher_only": True}
    teacher["train"] = {**teacher["train"], **(teacher_train or {})}
    distill = copy.deepcopy(dict(config))
    for spec in distill["teachers"]:
        spec["checkpoint"] = TEACHER_RUN
    finetune = copy.deepcopy(dict(config))
    del finetune["teachers"]
    finetune["distill"] = {"mode": "baseline"}
    finetune["model"] = {**finetune.get("model", {}),
                         "init_from": {"checkpoint": DISTILL_RUN, "networks": ["student"], "tables": True}}
    train = {k: v for k, v in finetune["train"].items() if k not in ("steps", "warmup_steps")}
    finetune["train"] = {**train, **FINETUNE_TRAIN}
    return {"config_teacher.yaml": (teacher, TEACHER_RUN), "config_distill.yaml": (distill, DISTILL_RUN),
            "config_finetune.yaml": (finetune, FINETUNE_RUN)}


def write_phase_configs(out_dir: str, config: Mapping, teacher_train: Mapping | None = None) -> list[str]:
    """Writes the three phases' configs into `out_dir` (beside config.yaml); returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, (name, (phase, run)) in enumerate(phase_configs(config, teacher_train).items()):
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# KD-DAGFM phase {i + 1} of 3: pfd-train --config {name} --model_dir {run} "
                    "(from this directory)\n")
            yaml.dump(phase, f, Dumper=ConfigDumper, sort_keys=False, default_flow_style=None, width=1 << 16)
        paths.append(path)
    return paths
