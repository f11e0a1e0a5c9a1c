"""The PFD paper's MTL baseline (Section 5.3) as a config (`pfd_tf.datasets.mtl_baseline_config`): one auxiliary task
per privileged column (standardized log1p MSE for a numeric one, log loss for a 0/1 one), their weights from the
config, hard parameter sharing (a shared first layer, a two-layer tower per task), the world's task served."""
from __future__ import annotations

import csv
import glob
import os

import numpy as np
import pytest
import yaml

from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.cli.train import run_task
from pfd_tf.config import ConfigError
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.datasets.cvr import generate_cvr
from pfd_tf.datasets.multitask_config import generate_multitask_world
from pfd_tf.datasets.writer import ConfigDumper
from pfd_tf.datasets.mtl_baseline_config import AUXILIARY_WEIGHT, MTL_CONFIG, mtl_baseline_config
from pfd_tf.distill.build import build_distiller
from pfd_tf.metrics import logloss_from_logits
from conftest import write_tiny_world


def _column(directory: str, split: str, name: str) -> np.ndarray:
    values = []
    for path in sorted(glob.glob(os.path.join(directory, split, "*.csv"))):
        with open(path, newline="") as f:
            values += [float(row[name]) for row in csv.DictReader(f)]
    return np.asarray(values)


def test_the_cvr_world_writes_its_mtl_baseline_beside_its_config(tmp_path):
    world = str(tmp_path / "cvr")
    generate_cvr(world, rows=3000, seed=0)
    config = config_lib.load(os.path.join(world, MTL_CONFIG))
    assert [(t.name, t.kind.value) for t in config.task_specs] == [
        ("purchase", "binary"), ("dwell_time", "regression"), ("viewed_comments", "binary"),
        ("chatted_with_seller", "binary"), ("added_to_cart", "binary"), ("images_viewed", "regression")]
    assert all(t.weight == AUXILIARY_WEIGHT for t in config.task_specs[1:]) and config.task_specs[0].weight == 1.0
    assert not config.privileged_features and not config.teacher_specs
    student = config.student
    assert (student.model.value, student.expert_units, student.tower) == ("shared_bottom", (512,), (256, 128))
    dwell = np.log1p(_column(world, "train", "dwell_time"))  # the train days' log dwell, standardized
    assert config.task_specs[1].center == pytest.approx(dwell.mean(), abs=1e-5)
    assert config.task_specs[1].scale == pytest.approx(dwell.std(), abs=1e-5)


def test_the_multitask_world_writes_its_mtl_baseline_with_both_of_its_tasks_first(tmp_path):
    world = str(tmp_path / "multitask")
    config = config_lib.load(generate_multitask_world(world, rows=3000, seed=0))
    mtl = config_lib.load(os.path.join(world, MTL_CONFIG))
    assert [(t.name, t.kind.value) for t in mtl.task_specs] == [
        ("like", "binary"), ("buy", "binary"), ("dwell_time", "regression"), ("viewed_comments", "binary")]
    assert [t.weight for t in mtl.task_specs] == [1.0, 1.0, AUXILIARY_WEIGHT, AUXILIARY_WEIGHT]
    assert mtl.student_features == config.student_features and not mtl.teacher_specs


def test_the_multitask_world_trains_crossdistil_on_ple_and_writes_pfd_beside_it(tmp_path):
    """config.yaml: CrossDistil on a PLE student (no teacher: its augmented tasks teach); config_pfd.yaml: a PLE
    teacher on every feature, each task's soft label into the student's same task."""
    world = str(tmp_path / "multitask")
    config = config_lib.load(generate_multitask_world(world, rows=3000, seed=0))
    assert config.students[0].model.value == "ple" and not config.teacher_specs
    assert config.distill.crossdistil is not None and tuple(config.distill.crossdistil.tasks) == ("like", "buy")
    pfd = config_lib.load(os.path.join(world, "config_pfd.yaml"))
    assert [t.model.value for t in pfd.teacher_specs] == ["ple"] and pfd.students[0].model.value == "ple"
    assert [(t.kind, t.source_task, t.target_task) for t in pfd.distill.terms] == [
        ("soft_label", "like", "like"), ("soft_label", "buy", "buy")]


@pytest.fixture(scope="module")
def mtl(tiny_config_path):
    """The tiny world's MTL baseline: its privileged `dwell` (numeric) and `cart` (0/1) as auxiliary tasks."""
    directory = os.path.dirname(tiny_config_path)
    with open(tiny_config_path) as f:
        raw = yaml.safe_load(f)
    raw["model"]["student_tower"] = [8, 6, 4]
    raw = mtl_baseline_config(raw, {"dwell": _column(directory, "train", "dwell"),
                                    "cart": _column(directory, "train", "cart")})
    return config_lib.from_dict(raw, directory)


def test_the_pipeline_yields_each_regression_target_standardized(mtl):
    dwell = mtl.task_specs[1]
    assert (dwell.name, dwell.transform) == ("dwell", "log1p")
    labels = next(iter(make_dataset_fn(mtl, "eval", 4096, training=False)(None)))[1]
    raw = _column(os.path.join(mtl.base_dir), "test", "dwell")
    np.testing.assert_allclose(labels["dwell"].numpy(), (np.log1p(raw) - dwell.center) / dwell.scale, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_array_equal(labels["cart"].numpy(), _column(mtl.base_dir, "test", "cart"))


def test_the_loss_is_the_main_log_loss_plus_the_weighted_auxiliary_losses(mtl):
    keras.utils.set_random_seed(0)
    model = build_distiller(mtl)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    assert model.student.body.network.backbone.units == (8,)  # the shared first layer
    assert model.student.body.network.towers.units == (6, 4)  # a two-layer MLP per task
    ids, labels = next(iter(make_dataset_fn(mtl, "train", 64, training=True)(None)))
    out = model.compute_losses(ids, labels, training=False)
    y = {name: value.numpy() for name, value in labels.items()}
    by_hand = (logloss_from_logits(y["label"], out["student_logits"].numpy())
               + AUXILIARY_WEIGHT * np.mean((y["dwell"] - out["student_dwell_logits"].numpy()) ** 2)
               + AUXILIARY_WEIGHT * logloss_from_logits(y["cart"], out["student_cart_logits"].numpy()))
    assert float(out["loss_student"]) == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("task,message", [
    ({"transform": "log"}, r"tasks\[1\]\.transform: unknown value 'log'"),
    ({"scale": 0.0}, r"tasks\[1\]\.scale: must be a positive number"),
    ({"center": float("nan")}, r"tasks\[1\]\.center: expected a finite number"),
    ({"kind": "binary", "transform": "log1p"}, r"tasks\[1\]\.transform: only a regression task's target"),
])
def test_a_target_key_is_checked_at_load_naming_it(mtl, task, message):
    raw = mtl.to_dict()
    raw["tasks"][1] = {**raw["tasks"][1], **task}
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(raw, mtl.base_dir)


@pytest.mark.parametrize("value", ["-1", "-2.5"])
def test_a_log1p_target_at_or_below_minus_one_is_a_data_error_naming_its_line(tmp_path, capsys, value):
    """log1p(y) of y <= -1 is -inf or NaN: a finite label that its task's transform cannot take.  The run refuses
    it as bad data (exit 2, file and line) before training, not as a diverged run (exit 4) many steps later."""
    directory = str(tmp_path / "world")
    config_path = write_tiny_world(directory)
    with open(config_path) as f:
        raw = yaml.safe_load(f)
    raw = mtl_baseline_config(raw, {"dwell": _column(directory, "train", "dwell"),
                                    "cart": _column(directory, "train", "cart")})
    with open(config_path, "w") as f:
        yaml.dump(raw, f, Dumper=ConfigDumper)
    path = sorted(glob.glob(os.path.join(directory, "train", "*.csv")))[0]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows[4][rows[0].index("dwell")] = value  # line 5 (the header is line 1)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    assert run_task(config_path, str(tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert f"{path}: line 5: label column 'dwell': {value} is not a finite number above -1" in err, err
    assert not os.path.exists(str(tmp_path / "run" / "checkpoints"))
