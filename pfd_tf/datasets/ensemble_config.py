"""The `config.yaml` the ensemble world writes: three teachers of the zoo (FM, DCN-v2, xDeepFM) and a DNN
student distilled through the gating network (Eq. (11) of Zhu et al. 2020), trained by Adam.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pfd_tf.datasets.ensemble_world import LABEL, EnsembleWorld, ensemble_features, ensemble_hash_buckets, \
    field_names
from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import DAY, FlowDict, feature_config, write_days

EPOCHS = 1
"""Passes over the train days: one.  Deep CTR models over sparse ids tend to overfit from the
second epoch on (the "one-epoch" phenomenon), and the tail of the id-like fields here is seen a
few times only; ``--set train.epochs=2`` trains two."""
OPTIMIZER = "adam"
LEARNING_RATE = 0.002
"""The written config's optimizer and peak rate: Adam, as the ensemble paper trains (Section 4.1.3:
Adam, rate 0.001) and DeepCTR does, at the rate chosen on world 100 (400,000 rows, one epoch; the
student's held-out AUC: Adam 0.001 0.7022, Adam 0.002 0.7036, Adagrad 0.4 0.7007, Adagrad 1.6 with
every teacher on its own tables 0.6980).  The config shipped before trained with Adagrad at 1.6 and
diverged on worlds 0, 1 and 2 (student AUC 0.55, 0.49, 0.52, exit 0): the four networks read the
same tables, and at Adagrad's large first steps FM's pairwise term (190 pairs of 16-dim rows) blew up
first, near step 33 of the warm-up's 34 (rate ~1.5), then xDeepFM, the student and DCN-v2; each
network alone trains at 1.6, and so did the four together at 0.8 over the first 100 steps of world 1
(docs/results.md, issues 19 and 20).
Adagrad at 1.6 also kills xDeepFM's CIN maps and its DNN part (ReLU units pushed negative by the
first steps), which Adam at these rates leaves alive."""


TEACHERS = [
    # The ensemble paper's teachers are DeepFM, DCN and xDeepFM (Section 3.4.1); here FM stands
    # for the second-order model, so that the teachers differ by the orders they express.
    {"name": "fm", "model": "fm", "features": "regular"},
    {"name": "dcn_v2", "model": "dcn_v2", "features": "regular", "cross_layers": 2, "cross_rank": 16},
    {"name": "xdeepfm", "model": "xdeepfm", "features": "regular", "cin_layers": [64, 64]},
]
MODEL = {"student_tower": [256, 128], "teacher_tower": [256, 128]}
DISTILL = {"ensemble": "gating", "lambda": 0.5}  # Eq. (7) with the gated teacher of Eqs. (10)-(11)


def ensemble_config(columns: Mapping[str, np.ndarray], world: EnsembleWorld, seed: int) -> dict:
    """The config.yaml of a simulated log: the other worlds' data, features and train
    sections, with three teachers of the zoo and a gated DNN student."""
    train = columns[DAY] < world.days - 1
    buckets = ensemble_hash_buckets(world)
    features = [feature_config(col, buckets.get(col.name), columns[col.name][train])
                for col in ensemble_features(world)]
    config = run_config(features, int(train.sum()), seed, epochs=EPOCHS, learning_rate=LEARNING_RATE)
    config["train"]["optimizer"] = OPTIMIZER
    config["data"]["label"] = LABEL
    config["model"] = dict(MODEL)
    config["distill"] = dict(DISTILL)
    return {"data": config["data"], "features": config["features"],
            "teachers": [FlowDict(t) for t in TEACHERS], "student": {"model": "dnn"},
            "model": config["model"], "distill": config["distill"], "train": config["train"]}


def write_ensemble_dataset(columns: Mapping[str, np.ndarray], world: EnsembleWorld, seed: int,
                           out_dir: str) -> str:
    """Writes ``train/day-XX.csv`` (days 0..days-2), ``test/day-XX.csv`` (last day)
    and ``config.yaml``; returns the config path. Rows must be sorted by day."""
    cards = world.field_cardinalities()
    names = list(field_names()) + [DAY, LABEL]
    text = [np.asarray(vocab(cards[f]), dtype=object)[columns[f]] for f in field_names()]
    text += [np.asarray(vocab(world.days), dtype=object)[columns[DAY]],
             np.asarray(vocab(2), dtype=object)[columns[LABEL]]]
    lines = [",".join(r) for r in zip(*(t.tolist() for t in text))]
    header = ",".join(names)
    return write_days(out_dir, header, lines, columns[DAY], world.days, ensemble_config(columns, world, seed))
