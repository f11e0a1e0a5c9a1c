"""The multi-task backbones as networks (`model: shared_bottom | mmoe | ple | cross_stitch`, pfd_tf.models.zoo.backbone):
their keys checked at load, a tower per task of `tasks:` through the built distiller, each task's loss routed to its
own tower and gate only, and every task head exported and served in a fresh process."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller
from conftest import pfd_train_cli, write_tiny_world

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
BACKBONES = ["shared_bottom", "mmoe", "ple", "cross_stitch"]
TASKS = [{"name": "buy", "label": "label"}, {"name": "cart", "label": "cart"}]
SIZES = {"tower": [6, 4], "expert_units": [8], "experts": 2, "shared_experts": 1, "levels": 1}


def _two_task_raw(raw: dict) -> dict:
    """The tiny world's config with two tasks: its `cart` column is a label now, no longer a feature."""
    raw = dict(raw)
    raw["features"] = [f for f in raw["features"] if f["name"] != "cart"]
    raw["data"] = {k: v for k, v in raw["data"].items() if k != "label"}
    raw["tasks"] = TASKS
    return raw


@pytest.fixture(scope="module")
def raw(tiny_config_path):
    return _two_task_raw(config_lib.load(tiny_config_path).to_dict())


def _config(raw, tiny_config_path, **student):
    body = {k: v for k, v in raw.items() if k != "students"}
    body.update(student={**SIZES, **student}, distill={**raw["distill"], "mode": "baseline"})
    return config_lib.from_dict(body, os.path.dirname(tiny_config_path))


@pytest.mark.parametrize("model,key,value,message", [
    ("mmoe", "experts", 0, "student.experts: must be positive"),
    ("ple", "shared_experts", 0, "student.shared_experts: must be positive"),
    ("ple", "levels", 0, "student.levels: must be positive"),
    ("cross_stitch", "expert_units", [], "student.expert_units: list at least one positive hidden width"),
    ("shared_bottom", "expert_units", [4, -1], "student.expert_units: list at least one positive"),
])
def test_a_backbone_s_keys_are_checked_at_load_naming_the_key(raw, tiny_config_path, model, key, value, message):
    with pytest.raises(ConfigError, match=message):
        _config(raw, tiny_config_path, model=model, **{key: value})


def test_a_ple_task_may_not_take_the_name_of_its_shared_path(raw, tiny_config_path):
    renamed = {**raw, "tasks": [TASKS[0], {**TASKS[1], "name": "shared"}]}
    with pytest.raises(ConfigError, match=r"tasks\[1\]\.name: 'shared' names PLE's shared experts' path"):
        _config(renamed, tiny_config_path, model="ple")
    assert _config(renamed, tiny_config_path, model="mmoe").student.model.value == "mmoe"  # only PLE reserves it


def _model(config):
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


@pytest.mark.parametrize("model", BACKBONES)
def test_each_task_has_its_own_tower_and_no_head_over_final(raw, tiny_config_path, model):
    config = _config(raw, tiny_config_path, model=model)
    student = _model(config).student
    assert getattr(student, "task_heads", None) is None
    ids, labels = next(iter(make_dataset_fn(config, "train", 8, training=True)(None)))
    output = student.forward(ids, training=False)
    assert sorted(output.by_task) == ["buy", "cart"]
    assert output.by_task["buy"] is output.logits
    towers = student.body.network.towers.towers
    np.testing.assert_allclose(  # the served task's logit is its own tower's logit layer over `final`
        output.logits.numpy(), towers["buy"].logit(output.hidden["final"]).numpy()[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(output.by_task["buy"].numpy(), output.by_task["cart"].numpy())


def _grads(model, tape, loss, layer):
    return [g for g in tape.gradient(loss, layer.trainable_variables) if g is not None]


@pytest.mark.parametrize("model", BACKBONES)
def test_a_task_loss_moves_its_own_tower_and_gate_never_the_other_task_s(raw, tiny_config_path, model):
    """Through the built distiller: the cart task's loss (its weight in the student's loss) reaches the cart
    tower (and the cart gate of MMoE and one-level PLE), never the buy tower or gate; and the other way round."""
    config = _config(raw, tiny_config_path, model=model)
    distiller = _model(config)
    ids, labels = next(iter(make_dataset_fn(config, "train", 32, training=True)(None)))
    backbone = distiller.student.body.network
    gates = getattr(backbone.backbone, "gates", None)  # MMoE's, by task
    if model == "ple":
        gates = {task: backbone.backbone.extraction[0]["gates"][task] for task in ("buy", "cart")}
    for own, other in (("cart", "buy"), ("buy", "cart")):
        with tf.GradientTape(persistent=True) as tape:
            output = distiller.student.forward(ids, training=True)
            task = next(t for t in distiller.tasks if t.name == own)
            loss = task.loss(labels[own], output.by_task[own])
        assert _grads(distiller, tape, loss, backbone.towers.towers[own])
        assert not _grads(distiller, tape, loss, backbone.towers.towers[other])
        if gates is not None:
            assert _grads(distiller, tape, loss, gates[own])
            assert not _grads(distiller, tape, loss, gates[other])
        shared = _grads(distiller, tape, loss, backbone.backbone)  # the experts / bottom / own column
        assert shared


def test_a_one_task_config_trains_a_backbone_student_and_teacher(tiny_config_path):
    """`data.label` alone: one tower over the backbone, as student and as the PFD teacher (`teachers:`)."""
    raw = {k: v for k, v in config_lib.load(tiny_config_path).to_dict().items() if k != "students"}
    raw["student"] = {**SIZES, "model": "ple"}
    raw["teachers"] = [{"name": "pfd", "model": "mmoe", "features": "all", **SIZES}]
    raw["distill"] = {**raw["distill"], "mode": "teachers"}
    config = config_lib.from_dict(raw, os.path.dirname(tiny_config_path))
    model = _model(config)
    ids, labels = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    logs = model.train_step((ids, labels))
    assert np.isfinite(float(logs["loss_student"])) and "student_auc" in logs and "pfd_auc" in logs


def test_pfd_train_exports_every_task_head_of_a_backbone_student_served_in_a_fresh_process(tmp_path):
    """The real CLI on two tasks with a PLE student: metrics.json and the console give its Multi-AUC of both
    tasks (Eq. (12) of CrossDistil), and the SavedModel, loaded
    without pfd_tf, serves probability/logit and probability_cart/logit_cart equal to the checkpoint's."""
    path = write_tiny_world(str(tmp_path), rows=600)
    with open(path) as f:
        raw = _two_task_raw(yaml.safe_load(f))
    raw["student"] = {**SIZES, "model": "ple"}
    raw["distill"] = {**raw.get("distill", {}), "mode": "baseline"}  # the student alone: a short test
    model_dir = str(tmp_path / "run")
    proc = pfd_train_cli(path, model_dir, raw)
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["multi_auc"]["student"] == {"buy": metrics["eval"]["multi_auc_student"],
                                               "cart": metrics["eval"]["multi_auc_student_cart"]}
    assert json.loads(proc.stdout.strip().splitlines()[-1])["multi_auc"] == metrics["multi_auc"]  # the console
    out = str(tmp_path / "served.npz")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_USE_LEGACY_KERAS"] = "1"
    (test_csv,) = glob.glob(os.path.join(str(tmp_path), "test", "*.csv"))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "serve_export.py"),
                           os.path.join(model_dir, "export", "student"), test_csv, out, "tags=4"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = dict(np.load(out))
    assert set(served) == {"probability", "logit", "probability_cart", "logit_cart"}
    config = config_lib.load(path)
    distiller = _model(config)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    tf.train.Checkpoint(model=distiller).read(latest).expect_partial()
    by_task = {"buy": [], "cart": []}
    for ids, _ in make_dataset_fn(config, "eval", 128, training=False)(None):
        output = distiller.student.forward(ids, training=False)
        for task in by_task:
            by_task[task].append(output.by_task[task].numpy())
    np.testing.assert_allclose(served["logit"], np.concatenate(by_task["buy"]), atol=1e-4)
    np.testing.assert_allclose(served["logit_cart"], np.concatenate(by_task["cart"]), atol=1e-4)
    assert served["logit_cart"].std() > 0
