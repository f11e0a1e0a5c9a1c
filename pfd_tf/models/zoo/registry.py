"""The zoo's registry: one declaration per model (its parameters, hidden outputs, input needs, builder).

Free of TensorFlow, so the config layer (`pfd_tf.config.networks`, read by
`--help` before TensorFlow loads) validates a network from the same entry
that `pfd_tf.models.zoo.build.build_network` builds it from.  An entry
names its builder by module path (`"pfd_tf.models.zoo.fm:make_body"`),
imported only when a network is built.  The entries themselves are in
`pfd_tf.models.zoo.entries`; a new model is its file plus one entry there.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Optional

# A check reads one NetworkConfig value and says what is wrong with it (None: nothing); the config layer
# prefixes the key (`teachers[0].cin_layers: ...`).
Check = Callable[[Any], Optional[str]]


@dataclasses.dataclass(frozen=True)
class Param:
    """One `NetworkConfig` key a model reads, with the checks (in order) its value must pass at load."""

    key: str
    checks: tuple[Check, ...] = ()


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """What the config, the builder and the docs need to know about one model of the zoo.

    Attributes:
        name: the `model:` value (a `pfd_tf.config.zoo.ZooModel` value).
        build: `"module:function"` making its `Body` from (network, model, tower, name=...);
            empty for `dnn` and `two_tower`, which `pfd_tf.models.build` makes as `Ranker` / `TwoTowerRanker`.
        params: the `NetworkConfig` keys it reads, besides `model` and `tower`.
        hidden_outputs: its named hidden outputs besides the DNN part's `deep_i` (hint ends, Eq. (9)
            of Zhu et al. 2020).
        dnn_part: whether it has a DNN part (hidden outputs `deep_0`..`deep_{n-1}` for a tower of n layers).
        needs_stack: crosses fields through their `[batch, fields, dim]` stack, so needs equal embedding sizes.
        needs_first_order: reads one-wide first-order (linear) tables.
        summary: one line for the docs' table.
        multi_task: a multi-task backbone: its builder also takes `tasks` (the config's task names) and its
            network gives every task's logits itself (`NetworkOutput.by_task`), so gets no task heads.
    """

    name: str
    build: str
    params: tuple[Param, ...] = ()
    hidden_outputs: tuple[str, ...] = ("final",)
    dnn_part: bool = True
    needs_stack: bool = False
    needs_first_order: bool = False
    summary: str = ""
    multi_task: bool = False

    @property
    def param_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.key for p in self.params))

    def hidden_names(self, tower: tuple[int, ...]) -> tuple[str, ...]:
        """Every hidden output of this model with DNN part `tower`: what a hint may attach to."""
        deep = tuple(f"deep_{i}" for i in range(len(tower))) if self.dnn_part else ()
        return deep + self.hidden_outputs

    def builder(self) -> Callable:
        """The body maker, imported now (the zoo's layers import TensorFlow and tensorflow-recommenders)."""
        if not self.build:
            raise ValueError(f"model {self.name!r} is not built by the zoo: the Ranker / TwoTowerRanker of "
                             "pfd_tf.models.build are the dnn and two_tower networks")
        module, _, function = self.build.partition(":")
        return getattr(importlib.import_module(module), function)


_ENTRIES: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    """Adds `entry`; a second entry under one name is an error (a model is declared once)."""
    if entry.name in _ENTRIES:
        raise ValueError(f"zoo model {entry.name!r} is registered twice")
    _ENTRIES[entry.name] = entry
    return entry


def _load() -> None:
    if not _ENTRIES:
        importlib.import_module("pfd_tf.models.zoo.entries")


def get(name: str) -> ZooEntry:
    """The entry of model `name` (a string or a `ZooModel`)."""
    _load()
    return _ENTRIES[getattr(name, "value", name)]


def names() -> tuple[str, ...]:
    """Every registered model, in registration order."""
    _load()
    return tuple(_ENTRIES)


def entries() -> tuple[ZooEntry, ...]:
    _load()
    return tuple(_ENTRIES.values())
