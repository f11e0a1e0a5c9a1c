"""`train.embedding_l2`: L2 on the embedding rows a batch reads, added to the loss as `loss_l2`.

loss_l2 = embedding_l2 * (sum of squares of the rows the batch read, each
(feature, table) pair once) / batch size.  A table both networks read
(Share&Sync) is penalized once, a frozen teacher's (Ind&Async) or a frozen
student's (teacher pre-training) not at all, and the penalty's gradient is
sparse: it reaches the rows the batch read and no other variable.
"""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError
from pfd_tf.distill.build import build_distiller

L2 = 0.25
B = 6
# One batch of encoded ids: a duplicate user (3), padded sequences (0 is the padding id), a value feature.
IDS = {
    "user_id": [0, 3, 3, 7, 1, 9],
    "device": [0, 1, 2, 0, 1, 1],
    "tags": [[1, 2, 0], [3, 0, 0], [0, 0, 0], [4, 4, 5], [8, 1, 0], [2, 0, 0]],
    "price": [0.5, -1.0, 0.2, 1.5, 0.0, 2.0],
    "cart": [0, 1, 1, 0, 0, 1],
}
LABELS = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
REGULAR = ("user_id", "device", "tags", "price")


def _raw(**sections) -> dict:
    raw = {
        "data": {"train_files": ["train.csv"], "eval_files": ["test.csv"], "label": "label"},
        "features": [
            {"name": "user_id", "kind": "categorical", "hash_buckets": 10, "dim": 3, "side": "user"},
            {"name": "device", "kind": "categorical", "vocabulary": ["a", "b", "c"], "dim": 2},
            {"name": "tags", "kind": "sequence", "hash_buckets": 8, "max_len": 3, "dim": 2, "side": "user"},
            {"name": "price", "kind": "numeric", "encoding": "value", "mean": 1.0, "std": 2.0, "dim": 2,
             "side": "item"},
            {"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 2, "role": "privileged"},
        ],
        "model": {"student_tower": [8, 4], "teacher_tower": [8, 4], "big_teacher_tower": [8, 4]},
        "distill": {"mode": "pfd", "lambda": 0.5},
        "train": {"steps": 10, "embedding_l2": L2},
    }
    for section, values in sections.items():
        raw[section].update(values)
    return raw


def _batch():
    ids = {name: tf.constant(v, tf.float32 if name == "price" else tf.int64) for name, v in IDS.items()}
    return ids, tf.constant(LABELS)


def _distiller(**sections):
    model = build_distiller(config_lib.from_dict(_raw(**sections)))
    _randomize_tables(model)
    return model


def _randomize_tables(model, seed=0):
    """Rows of norm ~1 (the initializer's +-0.05 would make every penalty tiny)."""
    rng = np.random.default_rng(seed)
    for network in (model.student, model.teacher):
        for table in (network.tables.values() if network is not None else ()):
            table.embeddings.assign(rng.normal(size=table.embeddings.shape).astype(np.float32))


def _squares(table, name) -> float:
    """Sum of squares of the rows feature `name`'s ids read from `table`, each occurrence once.

    A value feature's table has one row, read once per example (its embedding is row * value)."""
    weights = table.embeddings.numpy()
    ids = np.zeros(B, int) if name == "price" else np.asarray(IDS[name]).reshape(-1)
    return float(np.sum(weights[ids] ** 2))


def _by_hand(pairs) -> float:
    return L2 * sum(_squares(table, name) for name, table in pairs) / B


def test_loss_l2_by_hand_with_a_shared_row_counted_once():
    """Share&Sync, pfd: the teacher reads the student's four tables and its own `cart` table."""
    model = _distiller()
    student, teacher = model.student.tables, model.teacher.tables
    assert all(teacher[name] is student[name] for name in REGULAR)
    out = model.compute_losses(*_batch(), training=False)
    expected = _by_hand([(n, student[n]) for n in REGULAR] + [("cart", teacher["cart"])])
    assert float(out["loss_l2"]) == pytest.approx(expected, rel=1e-5)
    counted_twice = expected + _by_hand([(n, student[n]) for n in REGULAR])
    assert float(out["loss_l2"]) != pytest.approx(counted_twice, rel=1e-3)
    # Added to Eq. (5)'s loss, nothing else changed.
    lam = float(out["lambda"])
    eq5 = (1 - lam) * out["loss_student"] + lam * out["loss_distill"] + out["loss_teacher"]
    assert float(out["loss"]) == pytest.approx(float(eq5) + expected, rel=1e-5)


def test_loss_l2_by_hand_with_independent_and_private_tables():
    # Ind&Sync: the teacher's five tables are its own, all penalized beside the student's four.
    model = _distiller(model={"sharing": "independent"})
    student, teacher = model.student.tables, model.teacher.tables
    assert not any(teacher[name] is student[name] for name in REGULAR)
    out = model.compute_losses(*_batch(), training=False)
    expected = _by_hand([(n, student[n]) for n in REGULAR] + [(n, t) for n, t in teacher.items()])
    assert float(out["loss_l2"]) == pytest.approx(expected, rel=1e-5)

    # Share*&Sync: the student's private user_id table and the shared one are two tables, both read.
    model = _distiller(model={"student_private_features": ["user_id"]})
    student, teacher = model.student.tables, model.teacher.tables
    assert student["user_id"] is not teacher["user_id"] and student["device"] is teacher["device"]
    out = model.compute_losses(*_batch(), training=False)
    expected = _by_hand([(n, student[n]) for n in REGULAR] + [("user_id", teacher["user_id"]),
                                                             ("cart", teacher["cart"])])
    assert float(out["loss_l2"]) == pytest.approx(expected, rel=1e-5)


def test_l2_gradient_reaches_only_the_rows_the_batch_read():
    model = _distiller()
    ids, labels = _batch()
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        out = model.compute_losses(ids, labels, training=True)
    gradients = dict(zip([v.ref() for v in variables], tape.gradient(out["loss_l2"], variables)))
    tables = {**model.student.tables, "cart": model.teacher.tables["cart"]}
    table_refs = {t.embeddings.ref() for t in tables.values()}
    for variable in variables:
        if variable.ref() not in table_refs:
            assert gradients[variable.ref()] is None, variable.name  # towers: no L2
    for name, table in tables.items():
        grad = gradients[table.embeddings.ref()]
        assert isinstance(grad, tf.IndexedSlices), name  # sparse: no dense push of the whole table
        read = np.zeros(B, int) if name == "price" else np.asarray(IDS[name]).reshape(-1)
        # One gather per table, shared tables included: the batch's ids, once.
        np.testing.assert_array_equal(np.sort(grad.indices.numpy()), np.sort(read))
        counts = np.bincount(read, minlength=table.embeddings.shape[0])[:, None]
        expected = 2 * L2 / B * counts * table.embeddings.numpy()
        np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), expected, rtol=1e-5, atol=1e-7)
        assert np.all(tf.convert_to_tensor(grad).numpy()[counts[:, 0] == 0] == 0)  # unread rows untouched


def test_a_frozen_teacher_or_student_gets_no_penalty(tmp_path):
    from pfd_tf.trainer import build_and_compile

    # Ind&Async: a teacher restored from a checkpoint and frozen.
    pretrained = _distiller(model={"sharing": "independent"})
    holder = tf.Module()
    holder.teacher = pretrained.teacher
    path = tf.train.Checkpoint(model=holder).write(str(tmp_path / "teacher"))
    config = config_lib.from_dict(_raw(model={"sharing": "independent"}, distill={"teacher_checkpoint": path}))
    model = build_and_compile(config, tf.distribute.get_strategy())
    _randomize_tables(model, seed=1)
    assert not model.teacher_trainable
    ids, labels = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = model.compute_losses(ids, labels, training=True)
    student = model.student.tables
    assert float(out["loss_l2"]) == pytest.approx(_by_hand([(n, student[n]) for n in REGULAR]), rel=1e-5)
    for table in model.teacher.tables.values():
        assert tape.gradient(out["loss_l2"], table.embeddings) is None
    assert "loss_teacher" in out and float(out["loss_teacher"]) > 0  # the teacher did run

    # Ind&Async's first stage: the teacher trains alone, the student is frozen.
    model = _distiller(model={"sharing": "independent"}, distill={"teacher_only": True})
    out = model.compute_losses(*_batch(), training=False)
    teacher = model.teacher.tables
    assert float(out["loss_l2"]) == pytest.approx(_by_hand(list(teacher.items())), rel=1e-5)


def test_zero_embedding_l2_adds_nothing():
    model = _distiller(train={"embedding_l2": 0.0})
    out = model.compute_losses(*_batch(), training=False)
    assert "loss_l2" not in out
    lam = float(out["lambda"])
    eq5 = (1 - lam) * out["loss_student"] + lam * out["loss_distill"] + out["loss_teacher"]
    assert float(out["loss"]) == pytest.approx(float(eq5), rel=1e-6)
    assert "loss_l2" not in [m.name for m in model.metrics]


def test_train_step_reports_loss_l2_and_applies_it():
    from pfd_tf.optim import make_optimizer

    config = config_lib.from_dict(_raw(distill={"mode": "baseline"}))
    model = build_distiller(config)
    _randomize_tables(model)
    model.compile(optimizer=make_optimizer(config.train))
    before = _by_hand([(n, model.student.tables[n]) for n in REGULAR])
    unread = model.student.tables["user_id"].embeddings.numpy()[[2, 4, 5, 6, 8]]
    logs = model.train_step(_batch())
    assert float(logs["loss_l2"]) == pytest.approx(before, rel=1e-5)  # measured before the update
    assert "loss_l2" in [m.name for m in model.metrics]
    # Adagrad moved the read rows towards 0 (the label loss is tiny next to rows of norm ~1) ...
    assert _by_hand([(n, model.student.tables[n]) for n in REGULAR]) < before
    # ... and left the rows no example read exactly where they were.
    np.testing.assert_array_equal(model.student.tables["user_id"].embeddings.numpy()[[2, 4, 5, 6, 8]], unread)


def test_config_wires_and_checks_embedding_l2():
    assert build_distiller(config_lib.from_dict(_raw())).embedding_l2 == L2
    assert config_lib.from_dict(_raw(train={"embedding_l2": 0})).train.embedding_l2 == 0.0
    with pytest.raises(ConfigError, match=r"train\.embedding_l2: must be >= 0"):
        config_lib.from_dict(_raw(train={"embedding_l2": -0.1}))
    with pytest.raises(ConfigError, match=r"train\.embedding_l2: expected a number"):
        config_lib.from_dict(_raw(train={"embedding_l2": "lots"}))
