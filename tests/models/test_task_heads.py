"""Several tasks: a head per task over `final` (pfd_tf.models.heads), each network's loss the tasks' weighted sum,
every task's progress and held-out metrics under its own keys."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller
from pfd_tf.evaluation import Evaluator
from pfd_tf.export import restore_student
from pfd_tf.metrics import exact_auc, logloss_from_logits
from conftest import pfd_train_cli, write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASKS = [{"name": "buy", "label": "label"}, {"name": "cart", "label": "cart"},
         {"name": "day", "label": "day", "kind": "regression", "weight": 0.5}]


@pytest.fixture(scope="module")
def config(tiny_config_path):
    """The tiny world with three tasks: its `cart` column is a label now, no longer a feature, and its `day`
    column (0 to 4, read by no feature) a regression target."""
    raw = config_lib.load(tiny_config_path).to_dict()
    raw["features"] = [f for f in raw["features"] if f["name"] != "cart"]
    del raw["data"]["label"]
    raw["tasks"] = TASKS
    return config_lib.from_dict(raw, os.path.dirname(tiny_config_path))


def _model(config):
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model



def test_several_tasks_with_a_hint_build_and_train(config):
    """A hint's W is shaped at build time by one step on dummy ids: its labels come by task name too."""
    hinted = config_lib.from_dict({**config.to_dict(), "distill": {**config.to_dict()["distill"], "hint_weight": 0.1}},
                                  config.base_dir)
    model = _model(hinted)
    assert len(model.hint_layers) == 1
    ids, labels = next(iter(make_dataset_fn(hinted, "train", 64, training=True)(None)))
    logs = model.train_step((ids, labels))
    assert float(logs["loss_hint"]) > 0 and "student_cart_auc" in logs

def test_the_loss_is_the_weighted_sum_of_the_tasks_losses(config):
    model = _model(config)
    ids, labels = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    out = model.compute_losses(ids, labels, training=False)
    y = {name: value.numpy() for name, value in labels.items()}
    for who in ("student", "teacher"):
        by_hand = (logloss_from_logits(y["buy"], out[f"{who}_logits"].numpy())
                   + logloss_from_logits(y["cart"], out[f"{who}_cart_logits"].numpy())
                   + 0.5 * np.mean((y["day"] - out[f"{who}_day_logits"].numpy()) ** 2))
        assert float(out[f"loss_{who}"]) == pytest.approx(by_hand, rel=1e-5)
    logs = model.train_step((ids, labels))
    assert {"student_auc", "student_cart_auc", "student_cart_logloss", "student_day_mse", "student_day_rmse",
            "teacher_cart_auc", "teacher_day_mse"} <= set(logs)


def test_the_served_task_keeps_the_bodys_logit_and_each_other_task_has_a_head_over_final(config, tiny_config_path):
    """The student's variables are a one-task student's (same names: its checkpoints restore) plus two heads."""
    one_task = _model(config_lib.load(tiny_config_path, ["distill.mode=baseline"]))
    model = _model(config)
    heads = model.student.task_heads
    assert sorted(heads.heads) == ["cart", "day"] and heads.served == "buy"
    head_names = {v.name for v in heads.trainable_variables}
    assert len(head_names) == 4 and all("head_cart" in n or "head_day" in n for n in head_names)
    names = {v.name for v in model.student.trainable_variables}
    assert {v.name for v in one_task.student.trainable_variables} == names - head_names


def test_a_task_loss_moves_its_own_head_only(config):
    model = _model(config)
    ids, labels = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    heads = model.student.task_heads.heads
    with tf.GradientTape() as tape:
        model.compute_losses(ids, labels, training=True)
        output = model.student.forward(ids, training=True)
        cart = model.tasks[1].loss(labels["cart"], output.by_task["cart"])
    grads = tape.gradient(cart, heads["day"].trainable_variables + heads["cart"].trainable_variables)
    assert all(g is None for g in grads[:2]) and all(g is not None for g in grads[2:])


def test_held_out_metrics_score_each_task_against_its_own_labels(config, tmp_path):
    model = _model(config)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    results = Evaluator(config)(path)
    evaluator_model = _model(config)
    tf.train.Checkpoint(model=evaluator_model).read(path).expect_partial()
    y, z = {}, {}
    for ids, labels in make_dataset_fn(config, "eval", 4096, training=False)(None):
        output = evaluator_model.student.forward(ids, training=False)
        for name in labels:
            y.setdefault(name, []).append(labels[name].numpy())
            z.setdefault(name, []).append(output.by_task[name].numpy())
    y = {k: np.concatenate(v) for k, v in y.items()}
    z = {k: np.concatenate(v) for k, v in z.items()}
    assert results["student_auc"] == pytest.approx(exact_auc(y["buy"], z["buy"]), abs=1e-6)
    assert results["student_cart_auc"] == pytest.approx(exact_auc(y["cart"], z["cart"]), abs=1e-6)
    assert results["student_day_mse"] == pytest.approx(np.mean((y["day"] - z["day"]) ** 2), rel=1e-4)
    assert "student_day_auc" not in results


@pytest.mark.parametrize("model", ["lr", "wide_deep", "dcn"])
def test_zoo_networks_give_each_task_its_logits(config, model):
    """A zoo student (its own logit: a first-order sum, a sum of logits, a Dense over cross and deep parts) gets
    the same heads over its `final`."""
    raw = config_lib.apply_overrides(config.to_dict(), [f"student.model={model}", "distill.mode=baseline"])
    student = _model(config_lib.from_dict(raw, config.base_dir)).student
    ids, _ = next(iter(make_dataset_fn(config, "train", 8, training=True)(None)))
    output = student.forward(ids, training=False)
    assert sorted(output.by_task) == ["buy", "cart", "day"]
    assert output.by_task["buy"] is output.logits
    assert all(value.shape == (8,) for value in output.by_task.values())


def test_pfd_train_reports_each_task_in_metrics_json_and_pfd_export_serves_the_first(tmp_path):
    """The real CLI: metrics.json holds the served task as before plus `tasks` by name; the export still runs."""
    path = write_tiny_world(str(tmp_path))
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["features"] = [f for f in raw["features"] if f["name"] != "cart"]
    del raw["data"]["label"]
    raw["tasks"] = TASKS
    model_dir = str(tmp_path / "run")
    pfd_train_cli(path, model_dir, raw)
    env = {**os.environ, "PYTHONPATH": ROOT}
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert set(metrics["student"]) == {"auc", "logloss"}
    assert metrics["tasks"]["buy"]["student"] == metrics["student"]
    assert set(metrics["tasks"]["cart"]["teacher"]) == {"auc", "logloss"}
    assert set(metrics["tasks"]["day"]["student"]) == {"mse", "rmse"}
    assert metrics["eval"]["student_cart_auc"] == metrics["tasks"]["cart"]["student"]["auc"]
    out = str(tmp_path / "exported")
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.export", "--model_dir", model_dir, "--out", out],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Served in a fresh process that never imports pfd_tf: each task's output, as the trained student gives it.
    served = str(tmp_path / "served.npz")
    test_csv = str(tmp_path / "test" / "test.csv")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "serve_export.py"), os.path.join(out, "student"),
                           test_csv, served, "tags=4"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(served)
    assert set(served.files) == {"probability", "logit", "probability_cart", "logit_cart", "prediction_day"}
    config = config_lib.load(os.path.join(model_dir, "config.yaml"))
    student = restore_student(config, tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    ids, _ = next(iter(make_dataset_fn(config, "eval", 100_000, training=False)(None)))
    trained = student.forward(ids, training=False).by_task
    np.testing.assert_allclose(served["logit"], trained["buy"].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(served["logit_cart"], trained["cart"].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(served["prediction_day"], trained["day"].numpy(), rtol=1e-4, atol=1e-5)
