"""`model.teacher_normalization`: the teachers' MLP towers normalized apart from the student's towers.

Why it exists (docs/results.md, "Why PFD+MD hurt the two-tower student"): on
the CTR world the two-tower student trains at Adagrad 1.6 without
normalization, and its l2-normalized towers bound its logit at +-5; PFD+MD's
DNN teacher, unnormalized at that rate, has an unbounded logit and diverged in
five of six runs on four worlds, through the tables it shares with the student and its soft labels.
The key normalizes the teachers' MLP towers only; a two-tower teacher (PFD's)
and every student keep `model.normalization`.
"""
from __future__ import annotations

import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, Normalization
from pfd_tf.distill.build import build_distiller
from pfd_tf.models.towers import DenseBatchNorm
from pfd_tf.models.two_tower import TwoTowerRanker
from pfd_tf.models.zoo.layers.deep import DeepPart

TWO_TOWER = ["model.architecture=two_tower", "model.behaviour_items=[tags]", "model.user_tower=[16,8]",
             "model.item_tower=[16,8]", "model.attention_heads=2", "model.attention_head_dim=4",
             "model.big_teacher_tower=[16,8]"]
NORMALIZERS = {"layer": "LayerNormalization", "batch": DenseBatchNorm.__name__}


def _norms(tower) -> set[str]:
    """The normalization layers among a tower's hidden layers."""
    return {type(layer).__name__ for layer in tower.hidden} & set(NORMALIZERS.values())


def _student_norms(student) -> set[str]:
    if isinstance(student, TwoTowerRanker):
        return _norms(student.user_tower) | _norms(student.item_tower)
    return _norms(student.tower)


@pytest.mark.parametrize("mode, architecture", [("pfd_md", "two_tower"), ("lupi", "two_tower"), ("md", "mlp")])
def test_a_dnn_teachers_tower_takes_the_teacher_normalization_and_the_student_keeps_its_own(
        tiny_config_path, mode, architecture):
    shape = TWO_TOWER if architecture == "two_tower" else ["model.big_teacher_tower=[16,8]"]
    for teacher, student in (("layer", "none"), ("none", "batch")):
        config = config_lib.load(tiny_config_path, [*shape, f"distill.mode={mode}", f"model.normalization={student}",
                                                    f"model.teacher_normalization={teacher}"])
        model = build_distiller(config)
        assert _norms(model.teacher.tower) == ({NORMALIZERS[teacher]} if teacher != "none" else set())
        assert _student_norms(model.student) == ({NORMALIZERS[student]} if student != "none" else set())


def test_empty_means_the_models_normalization(tiny_config_path):
    config = config_lib.load(tiny_config_path, ["distill.mode=pfd_md", "model.normalization=layer"])
    assert config.model.teacher_normalization == ""
    model = build_distiller(config)
    assert _norms(model.teacher.tower) == _norms(model.student.tower) == {"LayerNormalization"}


def test_a_two_tower_teacher_keeps_the_models_normalization(tiny_config_path):
    """PFD's two-tower teacher: its l2-normalized vectors bound its logit, as the student's do."""
    config = config_lib.load(tiny_config_path, [*TWO_TOWER, "distill.mode=pfd", "model.teacher_normalization=layer"])
    model = build_distiller(config)
    assert isinstance(model.teacher, TwoTowerRanker)
    assert _norms(model.teacher.user_tower) == _norms(model.teacher.item_tower) == set()
    assert config.network_normalization(config.teacher_specs[0]) is Normalization.NONE


def test_a_zoo_teachers_dnn_part_takes_it_and_a_zoo_student_does_not(tiny_config_path):
    config = config_lib.load(tiny_config_path, [
        "distill.mode=teachers", "teachers=[{name: deep, model: wide_deep, tower: [8]}]",
        "student.model=wide_deep", "student.tower=[8]", "model.teacher_tower=[8]", "model.student_tower=[8]",
        "model.teacher_normalization=batch"])
    model = build_distiller(config)
    (teacher_deep,) = [l for l in model.teachers["deep"].submodules if isinstance(l, DeepPart)]
    (student_deep,) = [l for l in model.student.submodules if isinstance(l, DeepPart)]
    assert teacher_deep.normalization is Normalization.BATCH
    assert student_deep.normalization is Normalization.NONE


def test_the_key_round_trips_and_a_bad_value_is_named(tiny_config_path):
    config = config_lib.load(tiny_config_path, ["model.teacher_normalization=layer"])
    assert config_lib.from_dict(config.to_dict(), config.base_dir) == config  # the run's saved config rebuilds it
    with pytest.raises(ConfigError, match=r"model\.teacher_normalization: unknown value 'group' \(choose one of: "
                                          r"batch, layer, none; empty: model\.normalization\)"):
        config_lib.load(tiny_config_path, ["model.teacher_normalization=group"])
