"""Several students from the config (issue 22, item 5): one teacher training the stages of a cascade together.

The config's `students:` list, its names and their checks; the shorthand's
soft label into every student; each student's held-out numbers by name; the
export of each under `export/<name>/`.
"""
from __future__ import annotations

import copy

import pytest

from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, ZooModel

FEATURES = [
    {"name": "user_id", "kind": "categorical", "hash_buckets": 16, "dim": 4, "side": "user"},
    {"name": "item_id", "kind": "categorical", "hash_buckets": 16, "dim": 4, "side": "item"},
    {"name": "cart", "kind": "categorical", "vocabulary": ["0", "1"], "dim": 4, "role": "privileged"},
]
RAW = {
    "data": {"train_files": ["train.csv"], "eval_files": ["test.csv"], "label": "label"},
    "features": FEATURES,
    "distill": {"mode": "pfd", "lambda": 0.4},
    "students": [{}, {"name": "retrieval", "model": "two_tower"}, {"name": "ranker", "model": "dagfm"}],
}


def _with_students(*students) -> dict:
    raw = copy.deepcopy(RAW)
    raw["students"] = list(students)
    return raw


def test_several_students_parse_by_name_and_round_trip():
    config = config_lib.from_dict(copy.deepcopy(RAW))
    assert config.student_names == ("student", "retrieval", "ranker")
    assert [s.model for s in config.students] == [ZooModel.DNN, ZooModel.TWO_TOWER, ZooModel.DAGFM]
    assert config_lib.from_dict(config.to_dict()) == config
    assert "name" not in config.to_dict()["students"][0]  # the served student's name is implied, as before
    one = config_lib.from_dict({k: v for k, v in RAW.items() if k != "students"})
    assert one.student_names == ("student",) and "name" not in one.to_dict()["students"][0]


def test_the_shorthand_soft_label_goes_to_every_student():
    config = config_lib.from_dict(copy.deepcopy(RAW))
    terms = config_lib.expand_terms(config.distill, ("teacher",), config.student_names)
    assert [(t.kind, t.student, t.weight) for t in terms] == [
        ("soft_label", name, 0.4) for name in ("student", "retrieval", "ranker")]


@pytest.mark.parametrize("students, key, words", [
    ([{}, {"model": "dnn"}], "students[1].name", "must be lower-case"),
    ([{}, {"name": "a"}, {"name": "Bad-Name"}], "students[2].name", "must be lower-case"),
    ([{}, {"name": "a"}, {"name": "a"}], "students[2].name", "duplicate student name 'a' (also students[1])"),
    ([{}, {"name": "student"}], "students[1].name", "duplicate student name 'student'"),
    ([{}, {"name": "teacher"}], "students[1].name", "reserved or a teacher's name"),
    ([{"name": "ranker"}, {"name": "a"}], "students[0].name", "the first student is the served one"),
    ([{}, {"name": "a", "tower": [0]}], "students[1].tower", "positive"),
])
def test_bad_students_are_refused_naming_the_key(students, key, words):
    with pytest.raises(ConfigError, match=r"^" + key.replace("[", r"\[").replace("]", r"\]")) as err:
        config_lib.from_dict(_with_students(*students))
    assert words in str(err.value)


def test_a_term_into_a_student_there_is_not_is_refused():
    raw = copy.deepcopy(RAW)
    raw["distill"] = {"mode": "pfd", "terms": [{"kind": "soft_label", "weight": 0.5, "student": "ranker"},
                                               {"kind": "soft_label", "weight": 0.5, "student": "recall"}]}
    with pytest.raises(ConfigError, match=r"distill.terms\[1\].student: no student 'recall' \(students: student, "
                                          r"retrieval, ranker\)"):
        config_lib.from_dict(raw)
