"""Gradient routing: for every model of the zoo and every loss, which variable groups the loss moves.

The distiller here has a co-trained teacher of the model under test (all
features, Share&Sync with the student, which is the same model), a frozen
pre-trained DNN teacher with batch normalization (restored through
`pfd_tf.trainer.load_teacher`, the pre-train scheme), the teacher gating
network (Eq. (11) of Zhu et al. 2020) and a hint from the co-trained teacher
(Eq. (9)).  Each loss may move only the groups `Distiller.loss_groups`
declares (`pfd_tf.distill.routing`), and must move the ones it is for; the
teacher never moves by a student's loss, and the frozen teacher never moves
at all, its batch-norm statistics included.
"""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import ZooModel
from pfd_tf.distill import routing
from pfd_tf.distill.build import build_distiller
from pfd_tf.trainer import build_and_compile

ZOO = [m.value for m in ZooModel if m is not ZooModel.TWO_TOWER]
B = 8
FEATURES = [
    {"name": "user_id", "kind": "categorical", "hash_buckets": 16, "dim": 4, "side": "user"},
    {"name": "device", "kind": "categorical", "vocabulary": ["a", "b", "c"], "dim": 4},
    {"name": "tags", "kind": "sequence", "hash_buckets": 8, "max_len": 3, "dim": 4, "side": "user"},
    {"name": "price", "kind": "numeric", "encoding": "value", "mean": 1.0, "std": 2.0, "dim": 4, "side": "item"},
    {"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 4, "role": "privileged"},
]


def _raw(model: str, frozen_checkpoint: str = "") -> dict:
    teachers = [{"name": "co", "model": model, "features": "all", "tower": [8, 4], "cin_layers": [4, 2],
                 "cross_layers": 2, "cross_rank": 2, "attention_layers": 1, "attention_dim": 2}]
    if frozen_checkpoint:
        teachers.append({"name": "frozen", "model": "dnn", "features": "all", "tower": [6],
                         "checkpoint": frozen_checkpoint})
    return {
        "data": {"train_files": ["train.csv"], "eval_files": ["test.csv"], "label": "label"},
        "features": FEATURES,
        "model": {"student_tower": [8, 4], "normalization": "batch"},
        "teachers": teachers,
        "student": {"model": model, "cin_layers": [3], "cross_layers": 1, "cross_rank": 2,
                    "attention_layers": 1, "attention_dim": 2},
        "distill": {"lambda": 0.5, "ensemble": "gating", "hint_weight": 0.1, "temperature": 2.0},
        "train": {"steps": 10, "embedding_l2": 0.01},
    }


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = {"user_id": tf.constant(rng.integers(0, 16, B)), "device": tf.constant(rng.integers(0, 4, B)),
           "tags": tf.constant(rng.integers(0, 8, (B, 3))), "price": tf.constant(rng.normal(size=B), tf.float32),
           "cart": tf.constant(rng.integers(0, 3, B))}
    return ids, tf.constant(rng.integers(0, 2, B).astype("float32"))


@pytest.fixture(scope="module")
def frozen_checkpoint(tmp_path_factory):
    """A checkpoint holding a DNN teacher `frozen` (with batch-norm statistics), as another run leaves it."""
    raw = _raw("dnn")
    raw["teachers"] = [{"name": "frozen", "model": "dnn", "features": "all", "tower": [6]}]
    source = build_distiller(config_lib.from_dict(raw))
    for variable in source.teachers["frozen"].variables:  # weights no fresh build would have
        variable.assign(tf.random.stateless_uniform(variable.shape, [1, 2], 0.5, 1.5))
    holder = tf.Module()
    holder.teacher_frozen = source.teachers["frozen"]
    return tf.train.Checkpoint(model=holder).write(str(tmp_path_factory.mktemp("frozen") / "ckpt"))


def _moved(tape, loss, variables) -> bool:
    grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return any(float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) > 0 for g in grads)


@pytest.mark.parametrize("model", ZOO)
def test_every_loss_moves_only_its_groups(model, frozen_checkpoint):
    distiller = build_and_compile(config_lib.from_dict(_raw(model, frozen_checkpoint)), tf.distribute.get_strategy())
    groups, allowed = distiller.variable_groups(), distiller.loss_groups()
    assert set(groups) >= {routing.STUDENT, routing.SHARED, routing.teacher_group("co"), routing.HINT,
                           routing.GATE}
    assert routing.teacher_group("frozen") not in groups  # frozen: nothing trainable
    all_vars = [v for vs in groups.values() for v in vs]
    assert {v.ref() for v in all_vars} == {v.ref() for v in distiller.trainable_variables}
    assert len(all_vars) == len(distiller.trainable_variables)  # each variable in exactly one group

    ids, labels = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = distiller.compute_losses(ids, labels, training=True)
        without_l2 = out["loss"] - out["loss_l2"]
    assert set(allowed) == {"loss_student", "loss_co", "loss_distill", "loss_hint", "loss_gate"}
    must_move = {"loss_student": {routing.SHARED}, "loss_co": {routing.teacher_group("co"), routing.SHARED},
                 "loss_distill": {routing.SHARED}, "loss_hint": {routing.HINT}, "loss_gate": {routing.GATE}}
    for loss, may in allowed.items():
        moved = {group for group, variables in groups.items() if _moved(tape, out[loss], variables)}
        assert moved <= may, (loss, moved - may)
        assert must_move[loss] <= moved, (loss, must_move[loss] - moved)
    # The co-trained teacher moves by its own loss only (and the L2 on its rows): never by the student's.
    teacher_vars = groups[routing.teacher_group("co")]
    total = tape.gradient(without_l2, teacher_vars, unconnected_gradients="zero")
    own = tape.gradient(out["loss_co"], teacher_vars, unconnected_gradients="zero")
    for a, b in zip(total, own):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), atol=1e-6)


@pytest.mark.parametrize("model", ["dnn", "deepfm"])
def test_terms_built_from_the_list_move_only_their_groups(model, frozen_checkpoint):
    """`distill.terms` (`pfd_tf.config.terms`): a soft label from the gated ensemble, logit matching and a hint
    from the co-trained teacher by name.  Each term moves only what `loss_groups` declares for it; no term moves
    a teacher."""
    raw = _raw(model, frozen_checkpoint)
    raw["distill"] = {"ensemble": "gating", "terms": [
        {"kind": "soft_label", "weight": 0.3, "temperature": 2.0},
        {"kind": "logit_matching", "weight": 0.2, "teacher": "co"},
        {"kind": "hint", "weight": 0.1, "teacher": "frozen", "teacher_layer": "deep_0"}]}
    distiller = build_and_compile(config_lib.from_dict(raw), tf.distribute.get_strategy())
    groups, allowed = distiller.variable_groups(), distiller.loss_groups()
    assert set(allowed) == {"loss_student", "loss_co", "loss_distill", "loss_logit_matching", "loss_hint",
                            "loss_gate"}
    ids, labels = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = distiller.compute_losses(ids, labels, training=True)
    must_move = {"loss_distill": {routing.STUDENT, routing.SHARED},
                 "loss_logit_matching": {routing.STUDENT, routing.SHARED},
                 "loss_hint": {routing.HINT, routing.STUDENT}}
    for loss, must in must_move.items():
        moved = {group for group, variables in groups.items() if _moved(tape, out[loss], variables)}
        assert must <= moved <= allowed[loss], (loss, moved)
        assert not any(group.startswith("teacher") for group in moved)


@pytest.mark.parametrize("model", ["dnn", "deepfm"])
def test_a_frozen_teacher_never_moves_its_statistics_included(model, frozen_checkpoint):
    distiller = build_and_compile(config_lib.from_dict(_raw(model, frozen_checkpoint)), tf.distribute.get_strategy())
    frozen = distiller.teachers["frozen"]
    assert any("moving_mean" in v.name for v in frozen.variables)
    before = [v.numpy().copy() for v in frozen.variables]
    co = distiller.teachers["co"].trainable_variables
    co_before = [v.numpy().copy() for v in co]
    dataset = tf.data.Dataset.from_tensors(_batch(1)).repeat(3)
    distiller.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)
    for b, v in zip(before, frozen.variables):
        np.testing.assert_array_equal(b, v.numpy(), err_msg=v.name)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(co_before, co))  # the co-trained one did train


def test_a_second_student_has_its_own_losses_and_never_moves_the_served_one(tmp_path):
    """Students are a mapping too: an FM student `small` beside the served DNN student, a LUPI teacher (privileged
    features only).  The two students share the regular tables (`students_shared`); each student's losses move its
    own variables and the tables, never the other student's own variables, never the teacher."""
    from pfd_tf.distill.distiller import Distiller
    from pfd_tf.models.zoo import build_linear_tables, build_network

    raw = _raw("dnn")
    raw.pop("teachers")
    raw["distill"] = {"mode": "lupi", "lambda": 0.5}
    config = config_lib.from_dict(raw)
    built = build_distiller(config)
    regular = config.student_features
    small = build_network(config_lib.NetworkConfig(model=ZooModel.FM), config.model, regular, built.student.tables,
                          build_linear_tables(regular), (), "student_small")
    distiller = Distiller(students={"student": built.student, "small": small}, teachers=built.teachers,
                          lambda_=0.5, embedding_l2=0.01)
    distiller.compile(optimizer=keras.optimizers.Adagrad(0.1))
    ids, labels = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = distiller.compute_losses(ids, labels, training=True)
    groups, allowed = distiller.variable_groups(), distiller.loss_groups()
    small_group = routing.student_group("small")
    assert set(groups) == {routing.STUDENT, small_group, routing.STUDENTS_SHARED, routing.teacher_group("teacher")}
    assert set(allowed) == {"loss_student", "loss_small", "loss_distill", "loss_distill_small", "loss_teacher"}
    must_move = {"loss_student": {routing.STUDENT, routing.STUDENTS_SHARED},
                 "loss_small": {small_group, routing.STUDENTS_SHARED},
                 "loss_distill": {routing.STUDENT, routing.STUDENTS_SHARED},
                 "loss_distill_small": {small_group, routing.STUDENTS_SHARED},
                 "loss_teacher": {routing.teacher_group("teacher")}}
    for loss, may in allowed.items():
        moved = {group for group, variables in groups.items() if _moved(tape, out[loss], variables)}
        assert moved == must_move[loss], (loss, moved)
        assert moved <= may
    # The total loss is both students' Eq. (5) plus the teacher's, plus L2.
    lam = 0.5
    total = sum((1 - lam) * out[f"loss_{s}"] + lam * out[key] for s, key in
                (("student", "loss_distill"), ("small", "loss_distill_small")))
    np.testing.assert_allclose(float(out["loss"]), float(total + out["loss_teacher"] + out["loss_l2"]), rtol=1e-6)

    dataset = tf.data.Dataset.from_tensors(_batch(1)).repeat(3)
    logs = distiller.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0).history
    assert {"small_auc", "loss_small", "loss_distill_small", "student_auc"} <= set(logs)
    saved = {name for name, _ in tf.train.list_variables(tf.train.Checkpoint(model=distiller).write(
        str(tmp_path / "ckpt")))}
    assert any(n.startswith("model/student_small/") for n in saved)
    assert any(n.startswith("model/student/") for n in saved)
    with pytest.raises(ValueError, match="the first student is the served one"):
        Distiller(students={"small": small, "student": built.student})


def _model_weights(distiller) -> list:
    """The distiller's weights, batch-norm statistics included, without its progress metrics' accumulators."""
    metric = {v.ref() for m in distiller.metrics for v in m.variables}
    return [v for v in distiller.weights if v.ref() not in metric]


def _weights_after_step(distiller, train_batch, gate_batch) -> list:
    """`_model_weights` after one train_step on `(train_batch, gate_batch)`; the distiller and its optimizer are
    put back as they were."""
    state = distiller.weights + distiller.optimizer.variables
    before = [v.numpy().copy() for v in state]
    distiller.train_step((train_batch, gate_batch))
    after = [v.numpy().copy() for v in _model_weights(distiller)]
    for variable, value in zip(state, before):
        variable.assign(value)
    return after


def test_a_validation_fed_gate_moves_by_validation_rows_only_and_nothing_else_moves_by_them(frozen_checkpoint):
    """distill.gate_data: validation (pfd_tf.distill.gate_data): a train step reads a training batch and a validation
    batch.  Another validation batch changes the gate's step and nothing else's (no teacher, student, table or
    batch-norm statistic); another training batch changes everything's step but the gate's."""
    raw = _raw("deepfm", frozen_checkpoint)
    raw["data"]["validation_files"] = ["valid.csv"]
    raw["distill"]["gate_data"] = "validation"
    distiller = build_and_compile(config_lib.from_dict(raw), tf.distribute.get_strategy())
    gate = {v.ref() for v in distiller.variable_groups()[routing.GATE]}
    weights = _model_weights(distiller)
    is_gate = [v.ref() in gate for v in weights]
    assert sum(is_gate) == 2 and any("moving_mean" in v.name for v in weights)  # w, b; batch-norm statistics
    start = [v.numpy().copy() for v in weights]

    train, valid, other_valid, other_train = _batch(0), _batch(1), _batch(2), _batch(3)
    one = _weights_after_step(distiller, train, valid)
    assert all(not np.array_equal(a, b) for a, b, g in zip(start, one, is_gate) if g)  # the gate trained
    other_gate_rows = _weights_after_step(distiller, train, other_valid)
    for variable, a, b, g in zip(weights, one, other_gate_rows, is_gate):
        assert np.array_equal(a, b) != g, variable.name  # the validation rows moved the gate and nothing else
    other_rows = _weights_after_step(distiller, other_train, valid)
    for variable, a, b, g in zip(weights, one, other_rows, is_gate):
        if g:
            np.testing.assert_array_equal(a, b, err_msg=variable.name)  # the training rows never move the gate
    moved_by_training = [not np.array_equal(a, b) for a, b, g in zip(one, other_rows, is_gate) if not g]
    assert sum(moved_by_training) > len(moved_by_training) // 2


def test_the_gate_data_key_is_checked_at_load():
    raw = _raw("deepfm")
    raw["teachers"].append({"name": "second", "model": "fm", "features": "regular"})
    raw["distill"]["gate_data"] = "validation"
    with pytest.raises(config_lib.ConfigError, match=r"^data\.validation_files: distill\.gate_data"):
        config_lib.from_dict(raw)
    raw["data"]["validation_files"] = ["valid.csv"]
    config_lib.from_dict(raw)
    for key, value, message in (("distill.ensemble", "average", r"^distill\.gate_data: validation trains"),
                                ("train.merge_validation", True, r"^train\.merge_validation: with distill"),
                                ("distill.gate_data", "rows", r"^distill\.gate_data: unknown value 'rows'")):
        section, name = key.split(".")
        changed = {**raw, section: {**raw[section], name: value}}
        if name == "merge_validation":
            changed["train"]["early_stopping"] = "distillation"
        with pytest.raises(config_lib.ConfigError, match=message):
            config_lib.from_dict(changed)


def _cascade_raw() -> dict:
    """One co-trained teacher, three students from the config (the served DNN, a two-tower `retrieval` and a
    DAGFM `ranker`), all on the shared tables: the one-teacher-three-students setting of "ranking distillation
    across the cascade"."""
    raw = _raw("dnn")
    raw.pop("student")
    raw["teachers"] = [{"name": "co", "model": "dnn", "features": "all", "tower": [8, 4]}]
    raw["students"] = [{"model": "dnn", "tower": [4]},
                       {"name": "retrieval", "model": "two_tower"},
                       {"name": "ranker", "model": "dagfm", "dagfm_layers": 2, "tower": [4]}]
    raw["distill"] = {"terms": [
        {"kind": "soft_label", "weight": 0.5, "student": "student"},
        {"kind": "soft_label", "weight": 0.3, "student": "retrieval", "temperature": 2.0},
        {"kind": "logit_matching", "weight": 0.2, "student": "ranker"}]}
    return raw


def test_students_from_the_config_move_only_their_own_network_the_tables_and_never_each_other():
    """Every loss of a three-student config against every variable group: a student's losses (its label loss and
    the terms that name it) move its own network and the tables it reads, never another student's network nor
    the teacher; the teacher's loss never moves a student's own network."""
    config = config_lib.from_dict(_cascade_raw())
    assert config.student_names == ("student", "retrieval", "ranker")
    distiller = build_and_compile(config, tf.distribute.get_strategy())
    groups, allowed = distiller.variable_groups(), distiller.loss_groups()
    own = {name: routing.student_group(name) for name in config.student_names}
    assert set(own.values()) | {routing.SHARED, routing.teacher_group("co")} <= set(groups)
    assert len([v for vs in groups.values() for v in vs]) == len(distiller.trainable_variables)
    assert set(allowed) == {"loss_student", "loss_retrieval", "loss_ranker", "loss_co", "loss_distill",
                            "loss_distill_retrieval", "loss_logit_matching_ranker"}
    ids, labels = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = distiller.compute_losses(ids, labels, training=True)
    owner = {"loss_student": "student", "loss_distill": "student", "loss_retrieval": "retrieval",
             "loss_distill_retrieval": "retrieval", "loss_ranker": "ranker", "loss_logit_matching_ranker": "ranker"}
    for loss in allowed:
        moved = {group for group, variables in groups.items() if _moved(tape, out[loss], variables)}
        assert moved <= allowed[loss], (loss, moved - allowed[loss])
        if loss == "loss_co":
            assert moved == {routing.teacher_group("co"), routing.SHARED}, moved
            continue
        assert {own[owner[loss]], routing.SHARED} <= moved, (loss, moved)
        others = {own[name] for name in own if name != owner[loss]} | {routing.teacher_group("co")}
        assert not moved & others, (loss, moved & others)
    # Each student's Eq. (5) with its own weight, plus the teacher's L_T and L2.
    total = (0.5 * out["loss_student"] + 0.5 * out["loss_distill"] + 0.7 * out["loss_retrieval"]
             + 0.3 * out["loss_distill_retrieval"] + 0.8 * out["loss_ranker"] + 0.2 * out["loss_logit_matching_ranker"])
    np.testing.assert_allclose(float(out["loss"]), float(total + out["loss_co"] + out["loss_l2"]), rtol=1e-6)
