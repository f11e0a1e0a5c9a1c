"""The `config.yaml` the dial world writes: an MLP student trained by PFD with Adam, ``engagement`` fed as its
value (a Gaussian signal, not quantile buckets).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from pfd_tf.datasets.dial_world import DIAL_COLUMNS, DIAL_FEATURES, LABEL, PRIVILEGED, DialWorld
from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, Column, FlowDict, as_strings, feature_config, write_days

EPOCHS = 2
"""Passes over the train days.  Chosen with LEARNING_RATE on the validation split of the validation world
(seed 100, 100,000 rows, defaults): baseline student AUC with Adam at 0.001 after 1 epoch 0.6911, 2: 0.6962,
3: 0.6923."""
OPTIMIZER = "adam"
LEARNING_RATE = 0.001
"""Adam's peak rate, chosen there for PFD (the config's mode): student AUC 0.6989 at 0.0005, 0.7032 at 0.001,
0.7002 at 0.002 (teacher 0.889 at 0.001); the baseline's best is the same rate (0.6841 at 0.0003, 0.6931 at
0.0005, 0.6962 at 0.001, 0.6926 at 0.002).  Adagrad, the other worlds' optimizer, left the ids far less
learned here: its baseline's best was 0.6742 (rate 0.2, 8 epochs; 0.671 at 0.4-1.6 with 2 or 4 epochs), and
neither embedding L2 (1e-5 to 1e-3), 4-dim id embeddings nor layer or batch normalization moved it above
0.673."""
MIN_STEPS_PER_EPOCH = 50
"""The batch is 1024 rows or fewer, so that an epoch has at least this many steps: Adam moves each weight by
about its rate per step, and a world of a few thousand rows (a smoke test) would otherwise train 5 steps and
stay near p = 0.5, worse than the constant predictor (measured at 3,000 rows: log loss 0.62 at 5 steps
against the constant's 0.50; 0.44 and 0.49 at ~100 steps of 52 rows, seeds 0 and 2)."""
MODEL = {"sharing": "shared", "student_private_features": [], "student_tower": [512, 256, 128],
         "teacher_tower": [512, 256, 128], "big_teacher_tower": [1024, 512, 256, 128]}


def dial_features(world: DialWorld) -> tuple[Column, ...]:
    """DIAL_FEATURES with the world's vocabularies (segments, categories); ids are hashed."""
    vocabularies = {"user_segment": vocab(world.n_segments), "category_id": vocab(world.n_categories)}
    return tuple(dataclasses.replace(c, vocabulary=vocabularies[c.name]) if c.name in vocabularies else c
                 for c in DIAL_FEATURES)


def dial_config(columns: Mapping[str, np.ndarray], world: DialWorld, seed: int) -> dict:
    """The config.yaml: the CVR world's sections with this label, ``engagement`` fed as its value
    (its mean and std computed from the training files), and an MLP student trained by PFD with Adam
    (LEARNING_RATE, EPOCHS, MIN_STEPS_PER_EPOCH)."""
    train = columns[DAY] < world.days - 1
    buckets = {"user_id": 2 * world.n_ids, "item_id": 2 * world.n_ids}
    features = []
    for col in dial_features(world):
        entry = feature_config(col, buckets.get(col.name), columns[col.name][train])
        if col.name == PRIVILEGED:  # a Gaussian signal: its value, not 20 quantile buckets
            entry = FlowDict(name=col.name, kind="numeric", encoding="value", dim=col.dim, role=col.role,
                              side=col.side)
        features.append(entry)
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["data"]["label"] = LABEL
    config["model"] = dict(MODEL)
    config["train"].update(optimizer=OPTIMIZER,
                           batch_size=max(1, min(1024, int(train.sum()) // MIN_STEPS_PER_EPOCH)))
    return config


def write_dial_dataset(columns: Mapping[str, np.ndarray], world: DialWorld, seed: int, out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last day) and
    ``config.yaml``; returns the config path.  Rows must be sorted by day."""
    by_name = {c.name: c for c in DIAL_FEATURES}
    text = [as_strings(by_name.get(k), columns[k]) for k in DIAL_COLUMNS]
    lines = [",".join(r) for r in zip(*text)]
    return write_days(out_dir, ",".join(DIAL_COLUMNS), lines, columns[DAY], world.days,
                      dial_config(columns, world, seed))
