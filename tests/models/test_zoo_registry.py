"""The zoo's registry (`pfd_tf.models.zoo.registry`): one entry per model, and the config, the builder and the docs
agree with it."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, NetworkConfig, ZooModel
from pfd_tf.models.zoo import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEACHER_FEATURES = [
    {"name": "user_id", "kind": "categorical", "hash_buckets": 16, "dim": 4},
    {"name": "device", "kind": "categorical", "vocabulary": ["a", "b", "c"], "dim": 4},
]
# The NetworkConfig keys every network has: which model, and its DNN part.
COMMON = {"model", "tower"}


def test_every_zoo_model_has_exactly_one_entry_and_a_second_is_refused():
    assert sorted(registry.names()) == sorted(m.value for m in ZooModel)
    assert len(registry.names()) == len(set(registry.names()))
    for model in ZooModel:
        assert registry.get(model).name == model.value == registry.get(model.value).name
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(registry.get(ZooModel.FM))


def test_every_entry_names_network_config_keys_and_every_model_key_belongs_to_some_entry():
    fields = {f.name for f in dataclasses.fields(NetworkConfig)}
    declared = set()
    for entry in registry.entries():
        assert set(entry.param_keys) <= fields - COMMON, entry.name
        declared |= set(entry.param_keys)
    assert declared == fields - COMMON


def _bad(value):
    """A value no check accepts, by the key's type (None: a bool, which has no bad value)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return 0
    if isinstance(value, tuple):
        return []
    return "bogus"


def _refused(model: str, key: str, value) -> str | None:
    raw = {"data": {"train_files": ["train.csv"], "eval_files": ["test.csv"], "label": "label"},
           "features": [dict(f) for f in TEACHER_FEATURES], "model": {"teacher_tower": [6]},
           "teachers": [{"name": "t", "model": model, key: value}]}
    try:
        config_lib.from_dict(raw)
    except ConfigError as err:
        return str(err)
    return None


@pytest.mark.parametrize("model", [m.value for m in ZooModel if m is not ZooModel.TWO_TOWER])
def test_the_config_checks_exactly_the_keys_the_entry_declares_for_its_model(model):
    """A bad value of a key the entry checks is refused naming that key; of any other key, ignored."""
    entry = registry.get(model)
    checked = {p.key for p in entry.params if p.checks}
    refused = set()
    for field in dataclasses.fields(NetworkConfig):
        bad = None if field.name in COMMON else _bad(field.default)
        if bad is None:
            continue
        message = _refused(model, field.name, bad)
        if message is not None:
            assert message.startswith(f"teachers[0].{field.name}: "), message
            refused.add(field.name)
    assert refused == checked
    assert _refused(model, "model", model) is None  # the defaults pass


def test_two_tower_has_no_parameters_of_its_own():
    assert registry.get(ZooModel.TWO_TOWER).params == ()  # its towers are model.user_tower / model.item_tower


@pytest.mark.parametrize("model", [e.name for e in registry.entries() if e.build])
def test_the_declared_hidden_outputs_are_those_the_built_network_returns(model):
    from test_zoo_networks import _network, _problem

    ids, _ = _problem(rows=4)
    out = _network(ZooModel(model), tower=(8, 4)).forward(ids, training=False)
    assert sorted(out.hidden) == sorted(registry.get(model).hidden_names((8, 4)))
    assert sorted(_network(ZooModel(model), tower=()).forward(ids).hidden) == sorted(
        registry.get(model).hidden_names(()))


def test_the_registry_and_the_config_load_without_tensorflow():
    code = ("import sys; from pfd_tf.models.zoo import registry; import pfd_tf.config; "
            "assert len(registry.names()) == len(registry.entries()) > 0; "
            "loaded = sorted(m for m in sys.modules if m.startswith('tensorflow')); "
            "assert not loaded, loaded")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_docs_table_lists_every_model_with_its_entry_s_hidden_outputs_and_keys():
    with open(os.path.join(ROOT, "docs", "zoo.md"), encoding="utf-8") as f:
        text = f.read()
    block = text[text.index("| `model` | network"):].split("\n\n")[0].splitlines()[2:]  # the rows under the header
    rows = [re.fullmatch(r"\| `(\w+)` \|.*\|(.*)\|(.*)\|", line).groups() for line in block]
    table = {name: (re.findall(r"`(\w+)`", hidden), set(re.findall(r"`(\w+)`", keys))) for name, hidden, keys in rows}
    assert sorted(table) == sorted(registry.names())
    for name, (hidden, keys) in table.items():
        entry = registry.get(name)
        assert hidden == ["deep_i"] * entry.dnn_part + list(entry.hidden_outputs), name
        assert set(entry.param_keys) <= keys, name
        assert ("tower" in keys) == entry.dnn_part, name
