"""Labels by task name: the pipeline's batches, the data checks of every task's label column, the distiller's
hard-label loss from the task objects."""
from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import pytest

from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.config import TaskConfig, TaskKind
from pfd_tf.data.checks import check_eval_split
from pfd_tf.data.files import DataError
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller
from pfd_tf.metrics import logloss_from_logits
from conftest import write_tiny_world

TASKS = (TaskConfig("main", "label"), TaskConfig("cart", "cart"), TaskConfig("dwell", "dwell", TaskKind.REGRESSION))


def _three_tasks(directory: str):
    """The tiny world read as three tasks (its `cart` and `dwell` columns labels, no longer features).  Built
    past `validate`, which allows one task until networks have a head per task: the data side takes any."""
    config = config_lib.load(write_tiny_world(directory))
    features = tuple(spec for spec in config.features if spec.name not in ("cart", "dwell"))
    return dataclasses.replace(config, features=features, tasks=TASKS)


def _column(path: str, name: str) -> np.ndarray:
    with open(path, newline="") as f:
        return np.array([float(row[name]) for row in csv.DictReader(f)], np.float32)


def test_batches_carry_each_tasks_labels_by_name(tmp_path):
    config = _three_tasks(str(tmp_path))
    held_out = list(make_dataset_fn(config, "eval", 50, training=False)(None))
    for task in TASKS:
        got = np.concatenate([labels[task.name].numpy() for _, labels in held_out])
        np.testing.assert_array_equal(got, _column(str(tmp_path / "test" / "test.csv"), task.label))
    cached = dataclasses.replace(config, data=dataclasses.replace(config.data, cache=True))
    for reader in (config, cached):  # the file stream and the rows held in memory
        _, labels = next(iter(make_dataset_fn(reader, "train", 16, training=True)(None)))
        assert set(labels) == {"main", "cart", "dwell"}
        assert all(value.shape == (16,) and value.dtype.name == "float32" for value in labels.values())


@pytest.mark.parametrize("column, value, why", [("cart", "2", "label column 'cart': 2 is not 0 or 1"),
                                                 ("dwell", "inf", "label column 'dwell': inf is not a finite number")])
def test_a_bad_label_of_any_task_is_named_with_its_file_and_line(tmp_path, column, value, why):
    config = _three_tasks(str(tmp_path))
    path = str(tmp_path / "test" / "test.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows[5][rows[0].index(column)] = value  # line 6 (the header is line 1)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DataError) as info:
        check_eval_split(config)
    assert str(info.value) == f"{path}: line 6: {why}"


def test_the_hard_label_loss_is_the_tasks_weighted_loss(tiny_config_path):
    """One task named `ctr` with weight 2: L_s is 2 x the log loss of Eq. (6), computed here by hand; the served
    task's keys are a one-label run's (`student_auc`)."""
    raw = config_lib.load(tiny_config_path).to_dict()
    del raw["data"]["label"]
    raw["tasks"] = [{"name": "ctr", "label": "label", "weight": 2.0}]
    config = config_lib.from_dict(raw, os.path.dirname(tiny_config_path))
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    ids, labels = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    assert set(labels) == {"ctr"}
    out = model.compute_losses(ids, labels, training=False)
    by_hand = logloss_from_logits(labels["ctr"].numpy(), out["student_logits"].numpy())
    assert float(out["loss_student"]) == pytest.approx(2 * by_hand, rel=1e-5)
    logs = model.train_step((ids, labels))
    assert set(logs) == {"loss", "loss_student", "student_auc", "student_logloss", "loss_teacher", "teacher_auc",
                         "teacher_logloss", "loss_distill", "lambda"}
