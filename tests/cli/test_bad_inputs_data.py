"""More runs that never lie (issue 19): config values, data files and results, through `pfd-train`'s own path.

As in test_bad_inputs.py (whose helpers and fixtures these cases share, and
whose CONFIG_CASES hold the values refused by key: train.steps 0, tables too
big, a held-out file that is a training file, ...): each bad input ends with
exit status 2 and a message naming its file, line and column, and a fresh
run's model_dir stays empty.  Then what used to reach metrics.json
as NaN: a number that is not finite in a held-out row reads as an empty
field, and a metric that is not finite is left out of a strict JSON file
with a warning naming it.
"""
from __future__ import annotations

import json
import math
import os

import pytest
import yaml

from pfd_tf.cli.train import run_task
from test_bad_inputs import _edit_line, _test_file, _train_file, world  # noqa: F401

PRICE = 4  # the tiny world's columns: day, user_id, item_id, device, price, tags, dwell, cart, label
USER = 1


def _set_field(column: int, value: str):
    return lambda fields: fields[:column] + [value] + fields[column + 1:]


def _config(world: str) -> str:
    return os.path.join(world, "config.yaml")


def _refused(world: str, capsys, overrides=()) -> str:
    """Runs pfd-train on `world` into a fresh model_dir: exit 2, nothing written; returns stderr."""
    model_dir = os.path.join(world, "run")
    assert run_task(_config(world), model_dir, list(overrides)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not os.path.exists(model_dir) or os.listdir(model_dir) == [], os.listdir(model_dir)
    return err


# -- config values (the refusals by key are cases of test_bad_inputs.CONFIG_CASES) -------------------
def test_a_length_left_out_is_the_default_and_a_zero_beside_epochs_is_unset(world):
    """Leaving train.steps and train.epochs out is the default length, not a refusal; `steps: 0` beside
    `epochs: 2` is how a saved config of an epochs run reads (config.yaml as given)."""
    from pfd_tf import config as config_lib

    raw = yaml.safe_load(open(_config(world)))
    del raw["train"]["steps"]
    assert config_lib.from_dict(raw, world).train.steps == config_lib.DEFAULT_STEPS
    raw["train"].update(steps=0, epochs=2.0)
    assert config_lib.from_dict(raw, world).train.epochs == 2.0


def test_a_held_out_file_reached_by_a_symbolic_link_is_still_a_training_file(world, capsys):
    os.symlink(_train_file(world), os.path.join(world, "test", "linked.csv"))
    err = _refused(world, capsys)
    assert f"data.eval_files: {os.path.realpath(_train_file(world))} is a training file too" in err


# -- data files, named by file, line and column ---------------------------------------------------
def _header(path: str, names: list[str]) -> None:
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join([",".join(names)] + lines[1:]) + "\n")


def test_a_header_naming_a_column_twice_is_refused(world, capsys):
    from conftest import COLUMNS

    _header(_train_file(world), ["price"] + COLUMNS[1:])  # 'day' renamed: two columns are 'price'
    err = _refused(world, capsys)
    assert f"{_train_file(world)}: line 1: the header names column 'price' twice (fields 1 and 5)" in err


def test_a_directory_matching_a_training_glob_is_refused(world, capsys):
    os.makedirs(os.path.join(world, "train", "more.csv"))
    err = _refused(world, capsys)
    assert f"data.train_files[0]: {os.path.join(world, 'train', '*.csv')!r} matches the directory " \
           f"{os.path.join(world, 'train', 'more.csv')}, which is not a data file" in err


def test_an_int64_id_that_overflows_in_a_held_out_row_is_named_before_training(world, capsys):
    _edit_line(_test_file(world), 4, _set_field(USER, "99999999999999999999"))
    err = _refused(world, capsys, ["features.user_id.dtype=int64"])
    assert f"{_test_file(world)}: line 4: column 'user_id': 99999999999999999999 does not fit in int64" in err
    assert "record" not in err


def test_an_int64_id_that_overflows_in_a_training_row_is_named(world, capsys):
    """Training rows are parsed as they train (counted, not parsed, before): the row is named when reached."""
    _edit_line(_train_file(world), 7, _set_field(USER, "-9223372036854775809"))
    model_dir = os.path.join(world, "run")
    assert run_task(_config(world), model_dir, ["features.user_id.dtype=int64"]) == 2
    err = capsys.readouterr().err
    assert f"{_train_file(world)}: line 7: column 'user_id': -9223372036854775809 does not fit in int64" in err
    assert "Traceback" not in err and not os.path.exists(os.path.join(model_dir, "metrics.json"))


# -- what a run reports -----------------------------------------------------------------------------
def _strict(path: str) -> dict:
    """metrics.json, read as strict JSON (NaN, Infinity refused)."""
    def refuse(constant):
        raise ValueError(f"{path}: {constant} is not JSON")

    with open(path) as f:
        return json.load(f, parse_constant=refuse)


AS_VALUE = ["features.price.encoding=value", "features.price.boundaries=[]"]  # NaN would reach every logit


def test_held_out_numbers_that_are_not_finite_leave_the_student_finite_and_metrics_json_strict(
        world, capsys, monkeypatch):
    """Numbers that are not finite in held-out rows of a feature fed as its value (NaN would reach every
    logit) read as empty fields: the student's metrics are finite.  And a metric that is not finite all
    the same (the teacher's, made so here) is left out of metrics.json with a warning naming it."""
    from pfd_tf import trainer
    from pfd_tf.evaluation import Evaluator

    class Broken(Evaluator):
        def __call__(self, checkpoint_path):
            results = super().__call__(checkpoint_path)
            results.update(teacher_auc=float("nan"), teacher_logloss=float("inf"))
            return results

    monkeypatch.setattr(trainer, "Evaluator", Broken)
    for line, value in ((3, "nan"), (8, "inf"), (20, "-inf"), (25, "1e39")):
        _edit_line(_test_file(world), line, _set_field(PRICE, value))
    model_dir = os.path.join(world, "run")
    assert run_task(_config(world), model_dir, AS_VALUE) == 0
    metrics = _strict(os.path.join(model_dir, "metrics.json"))
    assert math.isfinite(metrics["student"]["auc"]) and math.isfinite(metrics["student"]["logloss"])
    assert metrics["eval_rows"]["rows"] == 240
    err = capsys.readouterr().err
    for key in ("teacher.logloss (inf)", "teacher.auc (nan)", "teachers.teacher.logloss (inf)",
                "eval.teacher_auc (nan)", "eval.teacher_logloss (inf)"):
        assert f"warning: metrics.json: {key} is not a finite number: left out" in err, err
    assert metrics["teacher"] == {} and "teacher_auc" not in metrics["eval"]


ODD = ["", "nan", "NaN", "inf", "-inf", "1e39", "-1e39"]  # each reads as an empty field


@pytest.mark.parametrize("overrides, default", [
    ([], "0"), (["features.price.missing_id=true"], "0"), (AS_VALUE + ["features.price.default=7.5"], "7.5"),
], ids=["bucket", "missing id", "value"])
def test_numbers_that_are_not_finite_encode_as_an_empty_field_does(world, overrides, default):
    """Through the held-out pipeline (the parse, then the encoder the export carries too): the id (or the
    value) of an empty field: the missing id, or the feature's default's; never that of another number."""
    from pfd_tf import config as config_lib
    from pfd_tf.data import feature_stats
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.features import missing_id

    with open(_test_file(world)) as f:
        header, row = f.read().splitlines()[:2]
    rows = [",".join(_set_field(PRICE, v)(row.split(","))) for v in ODD + [default, "500"]]
    with open(_test_file(world), "w") as f:
        f.write("\n".join([header] + rows) + "\n")
    config = config_lib.load(_config(world), overrides)
    config = config_lib.with_feature_stats(config, feature_stats.compute(config))
    ids, _ = next(iter(make_dataset_fn(config, "eval", 64, training=False)(None)))
    price = ids["price"].numpy().tolist()
    odd, as_default, ordinary = price[: len(ODD)], price[len(ODD)], price[-1]
    empty = missing_id(config.feature("price")) if config.feature("price").missing_id else as_default
    assert odd == [empty] * len(ODD), price
    assert ordinary != empty and (as_default != empty) == config.feature("price").missing_id, price


def test_finite_only_keeps_positions_in_lists():
    from pfd_tf.finite_json import finite_only

    dropped: list[str] = []
    out = finite_only({"a": [1.0, float("nan"), 3], "b": {"c": float("-inf"), "d": "x"}}, dropped=dropped)
    assert out == {"a": [1.0, None, 3], "b": {"d": "x"}}
    assert dropped == ["a[1] (nan)", "b.c (-inf)"]
