"""Several teachers (Zhu et al. 2020, Section 3): the `teachers:` config, the ensembles, the hint, pre-training.

Losses are checked against hand computations (Eq. (8)-(11)); the pre-train
scheme runs for real: one run trains two zoo teachers alone, a second
restores them frozen, gates them and distils into a DNN student.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, FeatureView, Mode, ZooModel
from pfd_tf.distill.build import build_distiller
from pfd_tf.models.build import dummy_ids
from conftest import write_tiny_world

FEATURES = [
    {"name": "user_id", "kind": "categorical", "hash_buckets": 16, "dim": 4, "side": "user"},
    {"name": "device", "kind": "categorical", "vocabulary": ["a", "b", "c"], "dim": 4},
    {"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 4, "role": "privileged"},
]


def _raw(teachers=None, **sections) -> dict:
    raw = {
        "data": {"train_files": ["train.csv"], "eval_files": ["test.csv"], "label": "label"},
        "features": [dict(f) for f in FEATURES],
        "model": {"student_tower": [8, 4], "teacher_tower": [6]},
        "distill": {"lambda": 0.5},
        "train": {"steps": 10},
    }
    if teachers is not None:
        raw["teachers"] = teachers
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return raw


def _batch(seed=0, rows=6):
    rng = np.random.default_rng(seed)
    ids = {"user_id": tf.constant(rng.integers(0, 16, rows)), "device": tf.constant(rng.integers(0, 4, rows)),
           "cart": tf.constant(rng.integers(0, 3, rows))}
    return ids, tf.constant(rng.integers(0, 2, rows).astype("float32"))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _ce(p, z):
    q = _sigmoid(z)
    return -(p * np.log(q) + (1 - p) * np.log(1 - q))


# --- config -----------------------------------------------------------------
@pytest.mark.parametrize("mode, view, tower", [("pfd", FeatureView.ALL, (6,)), ("lupi", FeatureView.PRIVILEGED, (6,)),
                                               ("md", FeatureView.REGULAR, (32,)), ("pfd_md", FeatureView.ALL, (32,))])
def test_the_pfd_modes_are_shorthand_for_one_teacher(mode, view, tower):
    config = config_lib.from_dict(_raw(model={"big_teacher_tower": [32]}, distill={"mode": mode}))
    (teacher,) = config.teacher_specs
    assert (teacher.name, teacher.model, teacher.features, teacher.tower) == ("teacher", ZooModel.DNN, view, tower)
    assert config_lib.from_dict(_raw(distill={"mode": "baseline"})).teacher_specs == ()


def test_a_teachers_list_replaces_the_mode_and_round_trips():
    raw = _raw([{"name": "fm", "model": "fm"}, {"name": "wide", "model": "wide_deep", "features": "regular"}],
               distill={"ensemble": "gating"})
    config = config_lib.from_dict(raw)
    assert config.distill.mode is Mode.TEACHERS
    assert [(t.name, t.model, t.features) for t in config.teacher_specs] == [
        ("fm", ZooModel.FM, FeatureView.ALL), ("wide", ZooModel.WIDE_DEEP, FeatureView.REGULAR)]
    assert config_lib.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"distill\.mode: 'pfd' describes its own teacher"):
        config_lib.from_dict(_raw([{"name": "fm", "model": "fm"}], distill={"mode": "pfd"}))


@pytest.mark.parametrize("teachers, sections, error", [
    ([{"name": "fm", "model": "fm"}, {"name": "fm", "model": "lr"}], {}, r"teachers\[1\]\.name: duplicate"),
    ([{"name": "Big-One", "model": "fm"}], {}, r"teachers\[0\]\.name: 'Big-One' must be"),
    ([{"name": "student", "model": "fm"}], {}, r"teachers\[0\]\.name: 'student' is reserved"),
    ([{"name": "fm", "model": "fmm"}], {}, r"teachers\[0\]\.model: unknown value 'fmm'"),
    ([{"name": "t", "model": "xdeepfm", "cin_layers": [3, 2]}], {}, r"teachers\[0\]\.cin_layers: .* even"),
    ([{"name": "t", "model": "dcn_v2", "cross_rank": 0}], {}, r"teachers\[0\]\.cross_rank"),
    ([{"name": "t", "model": "xdeepfm", "cin_activation": "tanh"}], {}, r"teachers\[0\]\.cin_activation: unknown"),
    ([{"name": "t", "model": "fibinet", "bilinear": "all"}], {}, r"teachers\[0\]\.bilinear: unknown value"),
    ([{"name": "t", "model": "dagfm", "dagfm_type": "cin"}], {}, r"teachers\[0\]\.dagfm_type: unknown value"),
    ([{"name": "t", "model": "dagfm", "dagfm_layers": -1}], {}, r"teachers\[0\]\.dagfm_layers: must be positive"),
    ([{"name": "t", "model": "two_tower"}], {}, r"teachers\[0\]\.model: two_tower"),
    ([{"name": "t", "model": "fm"}], {"distill": {"hint_weight": 1.0, "hint_teacher": "u"}},
     r"distill\.hint_teacher: no teacher 'u'"),
    ([{"name": "t", "model": "fm", "checkpoint": "x"}], {"distill": {"teacher_only": True}},
     r"distill\.teacher_only: every teacher is pre-trained"),
    (None, {"distill": {"mode": "teachers"}}, r"distill\.mode: teachers needs"),
    (None, {"student": {"model": "two_tower"}}, r"student\.model: a two-tower student"),
])
def test_bad_teachers_are_refused_by_key(teachers, sections, error):
    with pytest.raises(ConfigError, match=error):
        config_lib.from_dict(_raw(teachers, **sections))


def test_students_are_a_list_whose_shorthand_is_student(tmp_path):
    listed = _raw()
    listed["students"] = [{"model": "fm"}]
    config = config_lib.from_dict(listed)
    assert config.students == (config_lib.StudentConfig(model=ZooModel.FM),) and config.student is config.students[0]
    shorthand = _raw(student={"model": "fm"})
    assert config_lib.from_dict(shorthand) == config
    assert config_lib.from_dict(config.to_dict()) == config and "students" in config.to_dict()
    # --set student.x reaches students[0] whichever way the file spells it (a saved config lists them).
    for raw in (listed, shorthand, config.to_dict(), _raw()):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(raw))
        assert config_lib.load(str(path), ["student.model=deepfm"]).student.model is ZooModel.DEEPFM
        assert config_lib.load(str(path), ["students.0.model=lr"]).student.model is ZooModel.LR
    for students, error in [([{}, {"model": "fm"}], r"students\[1\]\.name: '' must be lower-case"),
                            ([], r"students: expected a non-empty list of students"),
                            ([{"model": "fmm"}], r"students\[0\]\.model: unknown value 'fmm'")]:
        raw = _raw()
        raw["students"] = students
        with pytest.raises(ConfigError, match=error):
            config_lib.from_dict(raw)
    both = _raw(student={"model": "fm"})
    both["students"] = [{"model": "fm"}]
    with pytest.raises(ConfigError, match=r"student: shorthand for the first of students:; give one"):
        config_lib.from_dict(both)


def test_a_model_that_crosses_fields_needs_one_embedding_size():
    raw = _raw([{"name": "fm", "model": "fm", "features": "regular"}])
    raw["features"][1]["dim"] = 3
    with pytest.raises(ConfigError, match=r"features\[1\]\.dim: fm \(teachers\[0\]\) crosses fields pairwise"):
        config_lib.from_dict(raw)
    raw["teachers"][0]["model"] = "dcn"  # the cross network reads the concatenated vector: any sizes
    config_lib.from_dict(raw)


# --- losses by hand -----------------------------------------------------------
def _two_teachers(ensemble, **distill):
    teachers = [{"name": "a", "model": "dnn"}, {"name": "b", "model": "fm", "features": "regular"}]
    return build_distiller(config_lib.from_dict(_raw(teachers, distill={"ensemble": ensemble, **distill})))


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_the_average_ensembles_soft_label(temperature):
    model = _two_teachers("average", temperature=temperature)
    ids, labels = _batch()
    out = model.compute_losses(ids, labels, training=False)
    za, zb, zs = (out[k].numpy() for k in ("a_logits", "b_logits", "student_logits"))
    ze = (za + zb) / 2
    np.testing.assert_allclose(out["ensemble_logits"].numpy(), ze, rtol=1e-6)
    soft = temperature**2 * np.mean(_ce(_sigmoid(ze / temperature), zs / temperature))
    assert float(out["loss_distill"]) == pytest.approx(soft, rel=1e-5)
    assert float(out["alpha_a"]) == pytest.approx(0.5) and "loss_gate" not in out
    y = labels.numpy()
    loss = 0.5 * np.mean(_ce(y, zs)) + 0.5 * soft + np.mean(_ce(y, za)) + np.mean(_ce(y, zb))
    assert float(out["loss"]) == pytest.approx(loss, rel=1e-5)


def test_the_gating_networks_weights_and_loss():
    """Eq. (11): alpha_i = softmax_i(w_i z_Ti + b_i); the gate learns from the ensemble's log loss."""
    model = _two_teachers("gating")
    model.ensemble.w.assign([0.7, -1.2])
    model.ensemble.b.assign([0.3, 0.1])
    ids, labels = _batch(1)
    out = model.compute_losses(ids, labels, training=False)
    z = np.stack([out["a_logits"].numpy(), out["b_logits"].numpy()], axis=-1)
    scores = np.array([0.7, -1.2]) * z + np.array([0.3, 0.1])
    alpha = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    ze = (alpha * z).sum(-1)
    np.testing.assert_allclose(out["ensemble_logits"].numpy(), ze, rtol=1e-5)
    assert float(out["alpha_a"]) == pytest.approx(alpha[:, 0].mean(), rel=1e-5)
    assert float(out["loss_gate"]) == pytest.approx(np.mean(_ce(labels.numpy(), ze)), rel=1e-5)
    zs = out["student_logits"].numpy()
    assert float(out["loss_distill"]) == pytest.approx(np.mean(_ce(_sigmoid(ze), zs)), rel=1e-5)


def test_the_hint_is_the_squared_distance_after_a_learned_map():
    """Eq. (9): ||W v_T - v_S||^2, v_T the teacher's `final` (width 6), v_S the student's (width 4)."""
    config = config_lib.from_dict(_raw(distill={"mode": "pfd", "hint_weight": 0.3}))
    model = build_distiller(config)
    w = np.random.default_rng(2).normal(size=(6, 4)).astype("float32")
    model.hint.projection.kernel.assign(w)
    ids, labels = _batch(2)
    out = model.compute_losses(ids, labels, training=False)
    v_t = model.teacher.forward(ids).hidden["final"].numpy()
    v_s = model.student.forward(ids).hidden["final"].numpy()
    hint = np.mean(np.sum((v_t @ w - v_s) ** 2, axis=-1))
    assert float(out["loss_hint"]) == pytest.approx(hint, rel=1e-5)
    y, zs, zt = labels.numpy(), out["student_logits"].numpy(), out["teacher_logits"].numpy()
    loss = 0.5 * np.mean(_ce(y, zs)) + 0.5 * np.mean(_ce(_sigmoid(zt), zs)) + 0.3 * hint + np.mean(_ce(y, zt))
    assert float(out["loss"]) == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("distill, teachers, message", [
    ({"mode": "pfd", "hint_teacher_layer": "deep_7"}, None,
     r"distill.hint_teacher_layer: teacher 'teacher' \(dnn\) has no hidden output 'deep_7' \(it has: deep_0, final\)"),
    ({"hint_teacher": "cross", "hint_teacher_layer": "cin"}, [{"name": "fm", "model": "fm"},
                                                               {"name": "cross", "model": "dcn_v2"}],
     r"distill.hint_teacher_layer: teacher 'cross' \(dcn_v2\) has no hidden output 'cin' "
     r"\(it has: deep_0, cross, final\)"),
    ({"mode": "md", "hint_student_layer": "deep_2"}, None,
     r"distill.hint_student_layer: the student \(dnn\) has no hidden output 'deep_2' \(it has: deep_0, deep_1, final\)"),
])
def test_a_hint_layer_the_network_lacks_is_refused_when_the_config_loads(distill, teachers, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(_raw(teachers, distill={"hint_weight": 0.3, **distill}))


def test_dnn_and_two_tower_hidden_outputs_are_the_names_the_config_checks(tiny_config_path):
    """The zoo's networks are held to `hidden_names` in test_zoo_networks; here the two built outside it."""
    from pfd_tf.config.networks import hidden_names

    model = build_distiller(config_lib.from_dict(_raw(distill={"mode": "pfd"})))
    ids, _ = _batch()
    assert sorted(model.teacher.forward(ids).hidden) == sorted(hidden_names(ZooModel.DNN, (6,)))
    assert sorted(model.student.forward(ids).hidden) == sorted(hidden_names(ZooModel.DNN, (8, 4)))
    two_tower = ["model.architecture=two_tower", "model.user_tower=[8,4]", "model.item_tower=[8,4]"]
    config = config_lib.load(tiny_config_path, two_tower)
    model = build_distiller(config)
    ids = dummy_ids(config.features)
    assert sorted(model.student.forward(ids).hidden) == sorted(hidden_names(ZooModel.TWO_TOWER, ()))


# --- the pre-train scheme, for real -----------------------------------------------
def test_pretrained_zoo_teachers_are_restored_frozen_and_gated(tmp_path):
    from pfd_tf.trainer import train

    path = write_tiny_world(str(tmp_path))
    equal_dims = [f"features.{name}.dim=4" for name in ("device", "price", "tags", "dwell", "cart")]
    equal_dims += ["train.steps=60", "train.learning_rate=0.5"]
    teachers = ("teachers=[{name: fm, model: fm}, {name: cross, model: dcn_v2, cross_layers: 1, cross_rank: 4, "
                "features: regular}]")
    first = config_lib.load(path, equal_dims + [teachers, "distill.teacher_only=true"])
    stage_one = train(first, str(tmp_path / "teachers"), verbose=0)
    assert stage_one["student"] is None and set(stage_one["teachers"]) == {"fm", "cross"}

    restored = (f"teachers=[{{name: fm, model: fm, checkpoint: {tmp_path / 'teachers'}}}, "
                f"{{name: cross, model: dcn_v2, cross_layers: 1, cross_rank: 4, features: regular, "
                f"checkpoint: {tmp_path / 'teachers'}}}]")
    second = config_lib.load(path, equal_dims + [restored, "distill.ensemble=gating"])
    metrics = train(second, str(tmp_path / "student"), verbose=0)
    for name in ("fm", "cross"):  # frozen: the same held-out numbers as where they were trained
        assert metrics["teachers"][name] == pytest.approx(stage_one["teachers"][name], rel=1e-6)
    # fm reads the privileged features, the cross network does not: the gate learns to prefer fm.
    assert stage_one["teachers"]["fm"]["auc"] > stage_one["teachers"]["cross"]["auc"] + 0.1
    weights = metrics["ensemble_weights"]
    assert set(weights) == {"fm", "cross"} and sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert weights["fm"] > 0.7
    assert metrics["ensemble"]["auc"] > stage_one["teachers"]["cross"]["auc"] + 0.1
    assert metrics["student"]["auc"] > 0.5
    assert os.path.isdir(tmp_path / "student" / "export" / "student")
    with open(tmp_path / "student" / "metrics.json") as f:
        assert json.load(f)["teachers"] == metrics["teachers"]


def test_teachers_trained_alone_on_shared_tables_move_them():
    """teacher_only with Share&Sync: the student is frozen, the tables it shares with the teachers are not."""
    from pfd_tf.trainer import build_and_compile

    teachers = [{"name": "fm", "model": "fm"}, {"name": "deep", "model": "dnn", "features": "regular"}]
    config = config_lib.from_dict(_raw(teachers, distill={"teacher_only": True}))
    model = build_and_compile(config, tf.distribute.get_strategy())
    shared = model.teachers["fm"].tables["user_id"]
    assert shared is model.student.tables["user_id"] is model.teachers["deep"].tables["user_id"]
    student_only = model.student.tower.trainable_weights + model.student.tower.non_trainable_weights
    before = shared.embeddings.numpy().copy(), [v.numpy().copy() for v in student_only]
    model.fit(tf.data.Dataset.from_tensors(_batch(3)).repeat(4), epochs=1, steps_per_epoch=4, verbose=0)
    assert not np.array_equal(before[0], shared.embeddings.numpy())
    for b, v in zip(before[1], student_only):
        np.testing.assert_array_equal(b, v.numpy())


def test_the_cin_activation_reaches_the_cin():
    from pfd_tf._keras import keras

    teachers = [{"name": "x", "model": "xdeepfm", "cin_layers": [4, 2], "cin_activation": "linear"}]
    model = build_distiller(config_lib.from_dict(_raw(teachers)))
    assert model.teachers["x"].body.cin.activation is keras.activations.linear
