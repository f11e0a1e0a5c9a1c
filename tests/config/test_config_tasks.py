"""The config's `tasks:` list and its shorthand `data.label`: parsed, checked once, written back as given."""
from __future__ import annotations

import copy

import pytest
import yaml

from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, TaskConfig, TaskKind


@pytest.fixture()
def raw(tiny_config_path) -> dict:
    with open(tiny_config_path) as f:
        return yaml.safe_load(f)


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_lib.from_dict(raw)
    return str(info.value)


def _listing(raw: dict, tasks: list) -> dict:
    raw = copy.deepcopy(raw)
    del raw["data"]["label"]
    raw["tasks"] = tasks
    return raw


def test_a_tasks_list_replaces_data_label_and_is_written_back(raw):
    config = config_lib.from_dict(_listing(raw, [{"name": "ctr", "label": "label", "weight": 2}]))
    assert config.task_specs == (TaskConfig("ctr", "label", TaskKind.BINARY, 2.0),)
    again = config_lib.from_dict(config.to_dict())
    assert again.task_specs == config.task_specs and "label" not in config.to_dict()["data"]


def test_the_shorthand_writes_no_tasks_key(raw):
    out = config_lib.from_dict(raw).to_dict()
    assert "tasks" not in out and out["data"]["label"] == "label"


def test_data_label_beside_tasks_must_name_the_same_column(raw):
    both = copy.deepcopy(raw)
    both["tasks"] = [{"name": "ctr", "label": "label"}]
    assert config_lib.from_dict(both).task_specs[0].name == "ctr"
    both["tasks"] = [{"name": "ctr", "label": "cart"}]
    assert _error(both).startswith("data.label:")


@pytest.mark.parametrize("tasks, key", [
    ([{"name": "", "label": "label"}], "tasks[0].name"),
    ([{"name": "Click-Rate", "label": "label"}], "tasks[0].name"),
    ([{"name": "ctr", "label": "label"}, {"name": "ctr", "label": "cart"}], "tasks[1].name"),
    ([{"name": "ctr", "label": "label"}, {"name": "cvr", "label": "label"}], "tasks[1].label"),
    ([{"name": "ctr", "label": "label", "kind": "ordinal"}], "tasks[0].kind"),
    ([{"name": "ctr", "label": "label", "weight": -1}], "tasks[0].weight"),
    ([{"name": "ctr"}], "tasks[0].label"),
    ([{"name": "ctr", "label": "label", "colour": 1}], "tasks[0].colour"),
    ([{"name": "ctr", "label": "price"}], "features[3].column"),  # a feature's column
    ([{"name": "dwell", "label": "label", "kind": "regression"}], "tasks[0].kind"),  # the served task is binary
])
def test_a_bad_task_is_refused_naming_its_key(raw, tasks, key):
    assert _error(_listing(raw, tasks)).startswith(key + ":")


def test_neither_data_label_nor_tasks_is_refused(raw):
    del raw["data"]["label"]
    assert _error(raw).startswith("data.label:")


def test_overriding_one_form_replaces_the_files_other(raw):
    out = config_lib.apply_overrides(raw, ["tasks=[{name: ctr, label: label}]"])
    assert "label" not in out["data"] and config_lib.from_dict(out).task_specs[0].name == "ctr"
    listed = _listing(raw, [{"name": "ctr", "label": "label"}])
    assert "tasks" not in config_lib.apply_overrides(listed, ["data.label=label"])
