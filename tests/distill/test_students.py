"""Several students from the config (issue 22, item 5): one teacher training the stages of a cascade together.

The config's `students:` list, its names and their checks; the shorthand's
soft label into every student; each student's held-out numbers by name; the
export of each under `export/<name>/`.
"""
from __future__ import annotations

import copy
import os

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


def test_a_hint_into_another_student_is_checked_against_that_students_layers():
    raw = copy.deepcopy(RAW)
    raw["students"][2] = {"name": "ranker", "model": "dnn", "tower": [8, 4]}
    hint = {"kind": "hint", "weight": 0.1, "student": "ranker", "teacher_layer": "final"}
    raw["distill"] = {"mode": "pfd", "terms": [{**hint, "student_layer": "deep_1"}]}
    assert config_lib.from_dict(copy.deepcopy(raw)).distill.terms[0].student == "ranker"
    raw["distill"]["terms"][0]["student_layer"] = "deep_2"
    with pytest.raises(ConfigError, match=r"distill.terms\[0\].student_layer: student 'ranker' \(dnn\) has no hidden "
                                          r"output 'deep_2' \(it has: deep_0, deep_1, final\)"):
        config_lib.from_dict(raw)


def _cascade_world(directory: str) -> str:
    """The tiny world with one PFD teacher and three students: the served DNN, a two-tower `recall` and a DAGFM
    `ranker` (every embedding 4 wide: DAGFM crosses fields pairwise)."""
    import yaml

    from conftest import write_tiny_world

    path = write_tiny_world(directory)
    raw = yaml.safe_load(open(path))
    for feature in raw["features"]:
        feature["dim"] = 4
    raw["students"] = [{}, {"name": "recall", "model": "two_tower"},
                       {"name": "ranker", "model": "dagfm", "dagfm_layers": 2, "tower": [8]}]
    raw["train"].update({"steps": 6, "cost_report": True})
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return path


def _trained_logits(config, model_dir) -> dict:
    """Each student's held-out probabilities from the training-time model restored from the run's checkpoint."""
    import numpy as np

    from pfd_tf._keras import tf
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.trainer import build_and_compile

    model = build_and_compile(config, tf.distribute.get_strategy())
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))) \
        .expect_partial()
    out = {name: [] for name in config.student_names}
    for ids, labels in make_dataset_fn(config, "eval", 128, training=False)(None):
        losses = model.compute_losses(ids, labels, training=False)
        for name in out:
            out[name].append(losses[f"{name}_logits"].numpy())
    return {name: 1 / (1 + np.exp(-np.concatenate(z))) for name, z in out.items()}


def test_one_teacher_three_students_train_report_and_export_each(tmp_path, capsys):
    """pfd-train of one teacher and three students: metrics.json has each student's held-out AUC and log loss by
    name (the served one under `student`, as before); the served student is exported as before, every other into
    `export/<name>/` (a two-tower one with its towers, index and retrieval model) with its cost report beside it;
    each reloaded in a fresh process predicts what the trained student predicts; `pfd-export --student` exports
    the named ones and refuses a name the run lacks (exit 2).  One test for all of it (about 100 s on two shared
    cores: one training, its exports and cost reports, five fresh processes), since each step reads the last's
    output."""
    import glob
    import json
    import subprocess
    import sys

    import numpy as np

    from pfd_tf.cli.train import run_task
    from pfd_tf.cost_report import REPORT

    path = _cascade_world(str(tmp_path))
    model_dir = str(tmp_path / "run")
    assert run_task(path, model_dir, []) == 0
    printed = capsys.readouterr().out
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert set(metrics["students"]) == {"recall", "ranker"}
    for scored in (metrics["student"], *metrics["students"].values()):
        assert set(scored) == {"auc", "logloss"} and 0 < scored["auc"] < 1
    assert metrics["eval"]["recall_auc"] == metrics["students"]["recall"]["auc"]
    assert '"students": {"recall"' in printed  # the console's last line
    assert "recall_auc" in printed and "ranker_auc" in printed  # the progress lines

    export = os.path.join(model_dir, "export")
    assert sorted(os.listdir(export)) == ["ranker", "recall", "student"]
    assert sorted(os.listdir(os.path.join(export, "recall"))) == sorted([
        "item_index.npz", "item_tower", "retrieval", REPORT, "student", "user_tower"])
    assert sorted(os.listdir(os.path.join(export, "ranker"))) == [REPORT, "student"]
    served_report = json.load(open(os.path.join(model_dir, REPORT)))
    assert set(served_report["models"]) == {"student", "teacher/teacher"}
    recall_report = json.load(open(os.path.join(export, "recall", REPORT)))
    assert set(recall_report["models"]) == {"student", "user_tower", "item_tower", "retrieval", "teacher/teacher"}
    assert recall_report["models"]["teacher/teacher"] == served_report["models"]["teacher/teacher"]
    assert recall_report["models"]["student"]["params"] != served_report["models"]["student"]["params"]

    config = config_lib.load(os.path.join(model_dir, "config.yaml"))
    expected = _trained_logits(config, model_dir)
    (test_csv,) = glob.glob(config.resolve_path(config.data.eval_files[0]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_USE_LEGACY_KERAS"] = "1"
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
    for name, where in (("student", "student"), ("recall", "recall/student"), ("ranker", "ranker/student")):
        out = str(tmp_path / f"{name}.npy")
        proc = subprocess.run([sys.executable, os.path.join(here, "serve_export.py"), os.path.join(export, where),
                               test_csv, out, "tags=4"], capture_output=True, text=True, timeout=300, env=env,
                              cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr[-3000:]
        np.testing.assert_allclose(np.load(out), expected[name], atol=1e-5, err_msg=name)
    assert not np.allclose(expected["recall"], expected["ranker"])  # three networks, not one exported thrice

    cli = [sys.executable, "-m", "pfd_tf.cli.export", "--model_dir", model_dir, "--out", str(tmp_path / "again")]
    proc = subprocess.run(cli + ["--student", "ranker"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.listdir(tmp_path / "again") == ["ranker"] and "ranker/student: " in proc.stdout
    proc = subprocess.run(cli + ["--student", "ranker,fine"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "--student fine: no such student (the run's students: student, recall, ranker)" in proc.stderr

    # pfd-report --student: one named student's costs, written beside its export; a name the run lacks refused.
    os.remove(os.path.join(export, "ranker", REPORT))
    report = [sys.executable, "-m", "pfd_tf.cli.report", model_dir, "--noteachers", "--repeats", "2", "--warmup",
              "1", "--batch_sizes", "1"]
    env = {**os.environ, "PYTHONPATH": os.path.dirname(here)}
    proc = subprocess.run(report + ["--student", "fine"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    assert "--student fine: not a student of this run (its students: student, recall, ranker)" in proc.stderr
    assert sorted(os.listdir(os.path.join(export, "ranker"))) == ["student"]
    proc = subprocess.run(report + ["--student", "ranker"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranker_report = json.load(open(os.path.join(export, "ranker", REPORT)))
    assert set(ranker_report["models"]) == {"student"}
    params = ranker_report["models"]["student"]["params"]  # the DAGFM ranker's own, not another student's
    assert params != served_report["models"]["student"]["params"]
    assert params != recall_report["models"]["student"]["params"]
