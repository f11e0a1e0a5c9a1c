"""metrics.json's Multi-AUC (CrossDistil's Eq. (12)) for a run with two binary tasks, per network and task, against a
hand computation over the held-out logits."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller
from pfd_tf.evaluation import Evaluator, summarize
from pfd_tf.tasks.build import tasks_for

TASKS = [{"name": "buy", "label": "label"}, {"name": "cart", "label": "cart"}]


def _by_hand(first, second, scores):
    """Eq. (12), its weights normalised: classes 2 y_first + y_second, every (higher, lower) pair of rows counted
    (ties 1/2), each class pair weighted by its share of the rows."""
    classes = 2 * first.astype(int) + second.astype(int)
    total = weights = 0.0
    for low, high in itertools.combinations(range(4), 2):
        lo, hi = scores[classes == low], scores[classes == high]
        if not lo.size or not hi.size:
            continue
        auc = np.mean((hi[:, None] > lo[None, :]) + 0.5 * (hi[:, None] == lo[None, :]))
        weight = (lo.size + hi.size) / classes.size
        total, weights = total + weight * auc, weights + weight
    return total / weights


@pytest.fixture(scope="module")
def config(tiny_config_path):
    raw = config_lib.load(tiny_config_path).to_dict()
    raw["features"] = [f for f in raw["features"] if f["name"] != "cart"]
    del raw["data"]["label"]
    raw["tasks"] = TASKS
    return config_lib.from_dict(raw, os.path.dirname(tiny_config_path))


def test_each_network_s_multi_auc_of_each_task_is_the_hand_computed_one(config, tmp_path):
    keras.utils.set_random_seed(3)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    for ids, labels in make_dataset_fn(config, "train", 64, training=True)(None).take(5):
        model.train_step((ids, labels))
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    results = Evaluator(config)(path)
    y, z = {}, {}
    for ids, labels in make_dataset_fn(config, "eval", 4096, training=False)(None):
        for who, network in (("student", model.student), ("teacher", model.teachers["teacher"])):
            output = network.forward(ids, training=False)
            for task in ("buy", "cart"):
                z.setdefault((who, task), []).append(output.by_task[task].numpy())
        for task in ("buy", "cart"):
            y.setdefault(task, []).append(labels[task].numpy())
    y = {k: np.concatenate(v) for k, v in y.items()}
    z = {k: np.concatenate(v) for k, v in z.items()}
    for who in ("student", "teacher"):
        buy = _by_hand(y["buy"], y["cart"], z[(who, "buy")])  # buy first: ++ > +- > -+ > --
        cart = _by_hand(y["cart"], y["buy"], z[(who, "cart")])  # cart first
        assert results[f"multi_auc_{who}"] == pytest.approx(buy, abs=1e-9)
        assert results[f"multi_auc_{who}_cart"] == pytest.approx(cart, abs=1e-9)
        assert 0.0 < buy < 1.0 and buy != pytest.approx(results[f"{who}_auc"])  # not the plain AUC
    table = summarize(results, ["teacher"], model.tasks)["multi_auc"]
    assert table == {who: {"buy": results[f"multi_auc_{who}"], "cart": results[f"multi_auc_{who}_cart"]}
                     for who in ("student", "teacher")}


def test_no_multi_auc_unless_the_first_two_tasks_are_binary(config, tiny_config_path):
    one = config_lib.load(tiny_config_path)
    assert "multi_auc" not in summarize({"student_auc": 0.7, "student_logloss": 0.5}, [], tasks_for(one))
    regression = config_lib.from_dict({**config.to_dict(), "tasks": [TASKS[0], {**TASKS[1], "kind": "regression"}]},
                                      config.base_dir)
    assert "multi_auc" not in summarize({"student_auc": 0.7, "student_logloss": 0.5}, [], tasks_for(regression))
    third = config_lib.from_dict({**config.to_dict(), "tasks": [TASKS[0], {"name": "day", "label": "day",
                                                                           "kind": "regression"}, TASKS[1]]},
                                 config.base_dir)  # cart is binary but third
    assert "multi_auc" not in summarize({"student_auc": 0.7, "student_logloss": 0.5}, [], tasks_for(third))
