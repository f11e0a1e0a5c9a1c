"""Behavioural tests of `pfd_tf.config`: loading, round trips, errors that name keys, overrides."""
from __future__ import annotations

import copy
import os

import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.config import (
    Config,
    ConfigError,
    DataFormat,
    FeatureKind,
    Mode,
    Role,
    Sharing,
    Side,
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
@pytest.fixture()
def raw(tiny_config_path) -> dict:
    """A fresh, mutable copy of the tiny world's YAML mapping."""
    with open(tiny_config_path) as f:
        return yaml.safe_load(f)


def _feature_index(raw: dict, name: str) -> int:
    return next(i for i, f in enumerate(raw["features"]) if f["name"] == name)


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_lib.from_dict(raw)
    return str(info.value)


# --------------------------------------------------------------------------
# Loading, round trips, saving
# --------------------------------------------------------------------------
def test_load_tiny_config(tiny_config_path):
    config = config_lib.load(tiny_config_path)
    assert isinstance(config, Config)
    assert config.base_dir == os.path.dirname(os.path.abspath(tiny_config_path))
    assert [f.name for f in config.features] == [
        "user_id", "item_id", "device", "price", "tags", "dwell", "cart"
    ]
    assert config.feature("price").kind is FeatureKind.NUMERIC
    assert config.feature("price").boundaries == (5.0, 10.0, 20.0, 40.0, 80.0)
    assert config.feature("tags").kind is FeatureKind.SEQUENCE
    assert config.feature("tags").max_len == 4
    assert config.feature("user_id").side is Side.USER
    assert config.feature("device").vocabulary == ("ios", "android", "pc")
    assert config.feature("device").side is Side.CONTEXT  # the default
    assert [f.name for f in config.privileged_features] == ["dwell", "cart"]
    assert all(f.role is Role.PRIVILEGED for f in config.privileged_features)
    assert config.data.format is DataFormat.CSV
    assert config.data.label == "label"
    assert config.distill.mode is Mode.PFD
    assert config.distill.lambda_ == 0.5
    assert config.distill.swap_step == 4
    assert config.model.sharing is Sharing.SHARED
    assert config.model.student_tower == (16, 8)
    assert config.train.batch_size == 64
    assert config.train.learning_rate == 0.05
    # Relative data paths resolve against the config's directory.
    assert config.resolve_path("train/*.csv") == os.path.join(config.base_dir, "train/*.csv")
    assert config.resolve_path("/abs/x.csv") == "/abs/x.csv"
    with pytest.raises(KeyError):
        config.feature("nope")


def test_to_dict_from_dict_round_trip(tiny_config_path):
    config = config_lib.load(tiny_config_path)
    plain = config.to_dict()
    assert "lambda" in plain["distill"] and "lambda_" not in plain["distill"]
    again = config_lib.from_dict(plain, base_dir=config.base_dir)
    assert again == config
    # ... and through YAML text too (to_dict must be YAML-able).
    text = yaml.safe_dump(plain)
    assert config_lib.from_dict(yaml.safe_load(text), base_dir=config.base_dir) == config


def test_round_trip_keeps_non_default_fields(raw):
    raw["features"].append(
        {"name": "user_id_hashed", "kind": "categorical", "column": "user_id",
         "hash_buckets": 7, "dim": 2, "side": "user"}
    )
    raw["features"].append(
        {"name": "price_fine", "kind": "numeric", "column": "price", "boundaries": [1, 2.5],
         "default": 3, "dim": 2}
    )
    raw["features"].append(
        {"name": "level", "kind": "categorical", "vocabulary": [1, 2, 3], "dtype": "int64", "dim": 2}
    )
    raw["features"].append(
        {"name": "level_hashed", "kind": "categorical", "column": "level", "dtype": "int64", "hash_buckets": 5, "dim": 2}
    )
    raw["model"].update(sharing="shared", student_private_features=["price"], dropout=0.25)
    raw["distill"].update(mode="pfd_md", temperature=2.0, **{"lambda": 0})
    raw["train"].update(seed=3, eval_steps=2)
    config = config_lib.from_dict(raw, base_dir="/somewhere")
    assert config.feature("level").vocabulary == ("1", "2", "3")  # ids are strings
    assert config.feature("price_fine").default == 3.0
    assert config.feature("price_fine").source == "price"
    again = config_lib.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())), base_dir="/somewhere")
    assert again == config
    assert again.distill.lambda_ == 0.0


def test_save_writes_absolute_paths_and_reloads(tiny_config_path, tmp_path):
    config = config_lib.load(tiny_config_path, ["distill.lambda=0.25"])
    out = tmp_path / "run" / "config.yaml"
    out.parent.mkdir()
    config_lib.save(config, str(out))
    assert not os.path.exists(str(out) + ".tmp")
    with open(out) as f:
        written = yaml.safe_load(f)
    for key in ("train_files", "eval_files"):
        assert written["data"][key], key
        for path in written["data"][key]:
            assert os.path.isabs(path), path
            assert path.startswith(config.base_dir)
    assert written["data"]["train_files"] == [os.path.join(config.base_dir, "train/*.csv")]

    reloaded = config_lib.load(str(out))
    assert reloaded.base_dir == str(tmp_path / "run")
    # Everything but the (now absolute) data paths and base_dir is equal ...
    assert reloaded.features == config.features
    assert reloaded.model == config.model
    assert reloaded.distill == config.distill
    assert reloaded.distill.lambda_ == 0.25
    assert reloaded.train == config.train
    # ... and the data paths still point at the same files.
    for key in ("train_files", "eval_files"):
        assert [reloaded.resolve_path(p) for p in getattr(reloaded.data, key)] == [
            config.resolve_path(p) for p in getattr(config.data, key)
        ]


# --------------------------------------------------------------------------
# Each error names its key
# --------------------------------------------------------------------------
def test_valid_raw_builds(raw):
    # The fixture mapping itself is valid: the error tests below change one thing each.
    config_lib.from_dict(raw)


def test_unknown_feature_kind_names_key(raw):
    raw["features"][1]["kind"] = "categorial"
    message = _error(raw)
    assert "features[1].kind" in message
    assert "categorial" in message


def test_unknown_role_names_key(raw):
    raw["features"][2]["role"] = "secret"
    assert "features[2].role" in _error(raw)


def test_unknown_side_names_key(raw):
    raw["features"][3]["side"] = "seller"
    assert "features[3].side" in _error(raw)


def test_duplicate_feature_name(raw):
    raw["features"][4]["name"] = "user_id"
    message = _error(raw)
    assert "features[4].name" in message
    assert "user_id" in message
    assert "features[0]" in message


def test_privileged_feature_in_student_features(raw):
    raw["model"]["student_features"] = ["user_id", "dwell"]
    message = _error(raw)
    assert "model.student_features[1]" in message
    assert "dwell" in message


def test_privileged_feature_in_student_private_features(raw):
    raw["model"]["student_private_features"] = ["cart"]
    message = _error(raw)
    assert "model.student_private_features[0]" in message
    assert "cart" in message


def test_unknown_feature_in_student_features(raw):
    raw["model"]["student_features"] = ["user_id", "nope"]
    message = _error(raw)
    assert "model.student_features[1]" in message
    assert "nope" in message


def test_unknown_top_level_section(raw):
    raw["optimizer"] = {"lr": 1}
    message = _error(raw)
    assert message.startswith("optimizer")
    assert "unknown section" in message


def test_unknown_key_in_section(raw):
    raw["distill"]["lamda"] = 0.3
    message = _error(raw)
    assert "distill.lamda" in message
    assert "lambda" in message.split("known:")[1]  # suggests the real spelling


def test_unknown_key_in_feature(raw):
    raw["features"][0]["buckets"] = 3
    assert "features[0].buckets" in _error(raw)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_lambda_out_of_range(raw, value):
    raw["distill"]["lambda"] = value
    assert "distill.lambda" in _error(raw)


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0])
def test_lambda_bounds_are_inclusive(raw, value):
    raw["distill"]["lambda"] = value
    assert config_lib.from_dict(raw).distill.lambda_ == float(value)


def test_numeric_without_boundaries(raw):
    i = _feature_index(raw, "price")
    del raw["features"][i]["boundaries"]
    assert f"features[{i}].boundaries" in _error(raw)


@pytest.mark.parametrize("boundaries", [[1.0, 1.0, 2.0], [3.0, 2.0]])
def test_non_increasing_boundaries(raw, boundaries):
    i = _feature_index(raw, "dwell")
    raw["features"][i]["boundaries"] = boundaries
    message = _error(raw)
    assert f"features[{i}].boundaries" in message
    assert "increasing" in message


def test_categorical_with_both_hash_buckets_and_vocabulary(raw):
    i = _feature_index(raw, "device")
    raw["features"][i]["hash_buckets"] = 10
    message = _error(raw)
    assert f"features[{i}]" in message
    assert "hash_buckets" in message and "vocabulary" in message


def test_categorical_with_neither_hash_buckets_nor_vocabulary(raw):
    i = _feature_index(raw, "user_id")
    del raw["features"][i]["hash_buckets"]
    message = _error(raw)
    assert f"features[{i}]" in message
    assert "hash_buckets" in message and "vocabulary" in message


def test_sequence_without_max_len(raw):
    i = _feature_index(raw, "tags")
    del raw["features"][i]["max_len"]
    assert f"features[{i}].max_len" in _error(raw)


def test_teacher_checkpoint_needs_independent_sharing(raw):
    raw["distill"]["teacher_checkpoint"] = "teacher/ckpt-1"
    message = _error(raw)
    assert "distill.teacher_checkpoint" in message
    assert "model.sharing: independent" in message
    raw["model"]["sharing"] = "independent"
    config = config_lib.from_dict(raw)
    assert config.model.sharing is Sharing.INDEPENDENT
    assert config.distill.teacher_checkpoint == "teacher/ckpt-1"


def test_teacher_only_needs_independent_sharing_and_a_teacher(raw):
    raw["distill"]["teacher_only"] = True
    assert "model.sharing: independent" in _error(raw)
    raw["model"]["sharing"] = "independent"
    assert config_lib.from_dict(raw).distill.teacher_only
    raw["distill"]["teacher_checkpoint"] = "teacher/ckpt-1"
    assert "distill.teacher_only" in _error(raw)
    del raw["distill"]["teacher_checkpoint"]
    raw["distill"]["mode"] = "baseline"
    assert "distill.teacher_only: the baseline has no teacher" in _error(raw)


@pytest.mark.parametrize("mode", ["pfd", "pfd_md", "lupi"])
def test_mode_needing_privileged_features(raw, mode):
    raw["features"] = [f for f in raw["features"] if f.get("role") != "privileged"]
    raw["distill"]["mode"] = mode
    message = _error(raw)
    assert "distill.mode" in message
    assert mode in message


@pytest.mark.parametrize("mode", ["baseline", "md"])
def test_modes_without_privileged_features_are_fine(raw, mode):
    raw["features"] = [f for f in raw["features"] if f.get("role") != "privileged"]
    raw["distill"]["mode"] = mode
    assert config_lib.from_dict(raw).privileged_features == ()


def test_unknown_mode(raw):
    raw["distill"]["mode"] = "kd"
    assert "distill.mode" in _error(raw)


def test_wrong_scalar_types_name_key(raw):
    bad = copy.deepcopy(raw)
    bad["train"]["steps"] = 7.5
    assert "train.steps" in _error(bad)
    bad = copy.deepcopy(raw)
    bad["train"]["learning_rate"] = "fast"
    assert "train.learning_rate" in _error(bad)
    bad = copy.deepcopy(raw)
    bad["model"]["student_tower"] = 16
    assert "model.student_tower" in _error(bad)


def test_missing_data_label(raw):
    del raw["data"]["label"]
    assert "data.label" in _error(raw)


def test_load_prefixes_path_and_keeps_key(tiny_config_path):
    with pytest.raises(ConfigError) as info:
        config_lib.load(tiny_config_path, ["distill.lambda=2"])
    assert str(info.value).startswith(tiny_config_path)
    assert "distill.lambda" in str(info.value)


def test_load_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        config_lib.load(str(tmp_path / "absent.yaml"))
    assert "absent.yaml" in str(info.value)


def test_negative_eval_steps_names_eval_steps(raw):
    raw["train"]["eval_steps"] = -1
    assert "train.eval_steps" in _error(raw)


# --------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------
def test_override_lambda_and_steps(tiny_config_path):
    config = config_lib.load(tiny_config_path, ["distill.lambda=0.3", "train.steps=7"])
    assert config.distill.lambda_ == 0.3
    assert config.train.steps == 7
    assert isinstance(config.train.steps, int)
    base = config_lib.load(tiny_config_path)
    assert base.distill.lambda_ == 0.5 and base.train.steps == 12


def test_override_feature_by_name_and_by_index(tiny_config_path):
    config = config_lib.load(tiny_config_path, ["features.user_id.dim=32", "features.0.dim=5"])
    # Both address features[0]; the later override wins.
    assert config.feature("user_id").dim == 5
    config = config_lib.load(tiny_config_path, ["features.item_id.dim=32", "features.0.dim=5"])
    assert config.feature("item_id").dim == 32
    assert config.feature("user_id").dim == 5
    assert config.feature("device").dim == 2  # untouched


def test_apply_overrides_does_not_mutate_input(raw):
    before = copy.deepcopy(raw)
    out = config_lib.apply_overrides(raw, ["features.tags.max_len=9", "distill.mode=md"])
    assert raw == before
    assert out["features"][_feature_index(out, "tags")]["max_len"] == 9
    assert out["distill"]["mode"] == "md"


def test_override_values_are_parsed_as_yaml(raw):
    out = config_lib.apply_overrides(raw, ["model.student_tower=[8, 4]", "data.label=", "train.seed=11"])
    assert out["model"]["student_tower"] == [8, 4]
    assert out["data"]["label"] == ""
    assert out["train"]["seed"] == 11


def test_override_creates_missing_section(raw):
    raw.pop("train")
    out = config_lib.apply_overrides(raw, ["train.steps=3"])
    assert out["train"] == {"steps": 3}


def test_override_unknown_list_entry_names_it(raw):
    with pytest.raises(ConfigError) as info:
        config_lib.apply_overrides(raw, ["features.nope.dim=3"])
    assert "features.nope" in str(info.value)
    with pytest.raises(ConfigError) as info:
        config_lib.apply_overrides(raw, ["features.99.dim=3"])
    assert "features.99" in str(info.value)


def test_override_unknown_list_entry_through_load(tiny_config_path):
    with pytest.raises(ConfigError, match="features.nope"):
        config_lib.load(tiny_config_path, ["features.nope.dim=3"])


def test_override_without_equals_raises(tiny_config_path, raw):
    with pytest.raises(ConfigError, match="train.steps"):
        config_lib.apply_overrides(raw, ["train.steps"])
    with pytest.raises(ConfigError):
        config_lib.load(tiny_config_path, ["distill.lambda"])


def test_override_into_scalar_is_an_error(raw):
    with pytest.raises(ConfigError, match="train.steps"):
        config_lib.apply_overrides(raw, ["train.steps.x=1"])


def test_override_unknown_key_is_caught_by_validation(tiny_config_path):
    with pytest.raises(ConfigError, match="distill.lamda"):
        config_lib.load(tiny_config_path, ["distill.lamda=0.3"])


# --------------------------------------------------------------------------
# Derived views
# --------------------------------------------------------------------------
REGULAR = ["user_id", "item_id", "device", "price", "tags"]
PRIVILEGED = ["dwell", "cart"]


@pytest.mark.parametrize(
    "mode, teacher, tower",
    [
        ("baseline", [], "teacher_tower"),
        ("lupi", PRIVILEGED, "teacher_tower"),
        ("md", REGULAR, "big_teacher_tower"),
        ("pfd", REGULAR + PRIVILEGED, "teacher_tower"),
        ("pfd_md", REGULAR + PRIVILEGED, "big_teacher_tower"),
    ],
)
def test_teacher_features_per_mode(tiny_config_path, mode, teacher, tower):
    config = config_lib.load(tiny_config_path, [f"distill.mode={mode}"])
    assert config.distill.mode is Mode(mode)
    assert [f.name for f in config.teacher_features] == teacher
    assert [f.name for f in config.student_features] == REGULAR
    assert [f.name for f in config.regular_features] == REGULAR
    assert [f.name for f in config.privileged_features] == PRIVILEGED
    if mode != "baseline":  # the baseline has no teacher, so no teacher tower to check
        assert config.teacher_tower == getattr(config.model, tower)
        assert config.teacher_tower == ((32, 16, 8) if tower == "big_teacher_tower" else (16, 8))


def test_explicit_student_features(tiny_config_path):
    config = config_lib.load(
        tiny_config_path, ["model.student_features=[price, user_id]", "distill.mode=pfd"]
    )
    assert [f.name for f in config.student_features] == ["price", "user_id"]
    assert [f.name for f in config.teacher_features] == ["price", "user_id", "dwell", "cart"]


@pytest.mark.parametrize("target, expected", [
    (["nope"], "unknown feature 'nope'"),
    (["user_id"], "side: item"),   # a user feature is not the candidate
    (["dwell"], "side: item"),     # privileged
    (["tags"], "side: item"),      # the behaviour sequence itself
])
def test_teacher_target_features_must_be_the_candidates_regular_features(raw, target, expected):
    raw["model"].update(behaviour_items=["tags"], teacher_target_features=target)
    message = _error(raw)
    assert "model.teacher_target_features[0]" in message and expected in message


def test_teacher_target_features_need_a_behaviour_sequence(raw):
    raw["model"]["teacher_target_features"] = ["item_id"]
    assert "model.behaviour_items" in _error(raw)
    raw["model"]["behaviour_items"] = ["tags"]
    config_lib.from_dict(raw)
