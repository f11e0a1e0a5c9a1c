"""Algorithm 1: which variables each loss moves, the lambda warm-up, sharing of embeddings."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller
from pfd_tf.names import DEFAULT_TASK

LR = 0.1


@pytest.fixture(scope="module")
def config(tiny_config_path):
    return config_lib.load(tiny_config_path, ["distill.swap_step=3", "distill.lambda=0.3"])


@pytest.fixture(scope="module")
def batch(config):
    return next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))


def _model(config, overrides=()):
    if overrides:
        config = config_lib.from_dict(config_lib.apply_overrides(config.to_dict(), overrides), config.base_dir)
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(LR))
    return model


def _groups(model):
    """Variable groups by owner: shared tables, teacher-only, student-only (by identity)."""
    student = {v.ref() for v in model.student.trainable_variables}
    teacher = {v.ref() for v in model.teacher.trainable_variables}
    return {"shared": student & teacher, "student_only": student - teacher, "teacher_only": teacher - student}


def _moved_by(model, batch, term):
    ids, labels = batch
    with tf.GradientTape() as tape:
        out = model.compute_losses(ids, labels, training=True)
    variables = model.trainable_variables
    grads = tape.gradient(out[term], variables)
    moved = set()
    for v, g in zip(variables, grads):
        if g is not None and float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) > 0:
            moved.add(v.ref())
    return moved


def test_distillation_loss_moves_student_and_shared_never_teacher(config, batch):
    model = _model(config)
    groups = _groups(model)
    moved = _moved_by(model, batch, "loss_distill")
    assert not moved & groups["teacher_only"]
    assert groups["student_only"] <= moved  # the whole student tower learns from the teacher
    assert moved & groups["shared"]  # ... and so do the shared input embeddings


def test_teacher_loss_never_moves_the_student_tower(config, batch):
    model = _model(config)
    groups = _groups(model)
    moved = _moved_by(model, batch, "loss_teacher")
    assert not moved & groups["student_only"]
    assert groups["teacher_only"] <= moved
    assert moved & groups["shared"]


def test_student_loss_never_moves_the_teacher(config, batch):
    model = _model(config)
    groups = _groups(model)
    assert not _moved_by(model, batch, "loss_student") & groups["teacher_only"]


def _expected_step(model, batch, lam):
    """Per variable, the SGD update of Algorithm 1 computed by hand from the three losses."""
    ids, labels = batch
    with tf.GradientTape(persistent=True) as tape:
        out = model.compute_losses(ids, labels, training=True)
    groups = _groups(model)
    expected = {}
    for v in model.trainable_variables:
        def grad(term):
            g = tape.gradient(out[term], v)
            return np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
        total = (1 - lam) * grad("loss_student") + lam * grad("loss_distill") + grad("loss_teacher")
        expected[v.ref()] = v.numpy() - LR * total
    return expected, groups


@pytest.mark.parametrize("iterations,lam", [(2, 0.0), (3, 0.3)])
def test_train_step_applies_algorithm_1_with_lambda_warm_up(config, batch, iterations, lam):
    model = _model(config)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(iterations)  # i < k: lambda 0; i >= k: lambda 0.3
    assert float(model.current_lambda()) == pytest.approx(lam)
    expected, groups = _expected_step(model, batch, lam)
    logs = model.train_step(batch)
    assert float(logs["lambda"]) == pytest.approx(lam)
    for v in model.trainable_variables:
        np.testing.assert_allclose(v.numpy(), expected[v.ref()], rtol=1e-4, atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == iterations + 1


def test_lambda_comes_from_the_checkpointed_optimizer_step(config, tmp_path):
    model = _model(config)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(5)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    restored = _model(config)
    restored.optimizer.build(restored.trainable_variables)
    assert float(restored.current_lambda()) == 0.0
    tf.train.Checkpoint(model=restored).read(path).expect_partial()
    assert float(restored.current_lambda()) == pytest.approx(0.3)


def test_sharing_modes(config):
    shared = _model(config)
    assert shared.student.tables["user_id"] is shared.teacher.tables["user_id"]

    private = _model(config, ["model.student_private_features=[user_id]"])
    assert private.student.tables["user_id"] is not private.teacher.tables["user_id"]
    assert private.student.tables["item_id"] is private.teacher.tables["item_id"]

    independent = _model(config, ["model.sharing=independent"])
    student_vars = {v.ref() for v in independent.student.trainable_variables}
    assert not student_vars & {v.ref() for v in independent.teacher.trainable_variables}


@pytest.mark.parametrize(
    "mode,teacher_features,tower",
    [
        ("lupi", {"dwell", "cart"}, (16, 8)),
        ("md", {"user_id", "item_id", "device", "price", "tags"}, (32, 16, 8)),
        ("pfd", {"user_id", "item_id", "device", "price", "tags", "dwell", "cart"}, (16, 8)),
        ("pfd_md", {"user_id", "item_id", "device", "price", "tags", "dwell", "cart"}, (32, 16, 8)),
    ],
)
def test_modes_wire_the_teacher(config, mode, teacher_features, tower):
    model = _model(config, [f"distill.mode={mode}"])
    assert set(model.teacher.feature_names) == teacher_features
    assert model.teacher.tower.units == tower
    assert set(model.student.feature_names) == {"user_id", "item_id", "device", "price", "tags"}


def test_baseline_trains_the_student_alone(config, batch):
    model = _model(config, ["distill.mode=baseline"])
    assert model.teacher is None
    logs = model.train_step(batch)
    assert set(logs) == {"loss", "loss_student", "student_auc", "student_logloss"}
    assert float(logs["loss"]) == pytest.approx(float(logs["loss_student"]))


def test_teacher_only_pretraining_moves_the_teacher_alone(config, batch):
    """Ind&Async's first stage: the loss is the teacher's log-loss; no student weight moves."""
    from pfd_tf.distill.losses import logloss

    model = _model(config, ["model.sharing=independent", "distill.teacher_only=true"])
    assert not model.student.trainable_variables
    assert {v.ref() for v in model.trainable_variables} == {v.ref() for v in model.teacher.trainable_variables}
    ids, labels = batch
    expected = float(logloss(labels[DEFAULT_TASK], model.teacher(ids, training=True)))
    student_before = [v.numpy().copy() for v in model.student.variables]
    teacher_before = [v.numpy().copy() for v in model.teacher.trainable_variables]
    logs = model.train_step(batch)
    assert set(logs) == {"loss", "loss_teacher", "teacher_auc", "teacher_logloss"}
    assert float(logs["loss"]) == pytest.approx(expected, rel=1e-5)
    for before, v in zip(student_before, model.student.variables):
        np.testing.assert_array_equal(before, v.numpy())
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(teacher_before, model.teacher.trainable_variables))
