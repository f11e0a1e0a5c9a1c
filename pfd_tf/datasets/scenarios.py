"""The synthetic worlds by name, for `pfd-data --scenario` and the benchmarks.

One generator per scenario: ``generate(out_dir, rows=, seed=, days=, **world) -> config path``,
where ``world`` overrides fields of the scenario's world dataclass (``WORLDS``).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from pfd_tf.datasets.ctr import generate_ctr
from pfd_tf.datasets.ctr_world import CtrWorld
from pfd_tf.datasets.cvr import generate_cvr
from pfd_tf.datasets.cvr_world import CvrWorld
from pfd_tf.datasets.dial import generate_dial
from pfd_tf.datasets.dial_world import DialWorld
from pfd_tf.datasets.ensemble import generate_ensemble
from pfd_tf.datasets.ensemble_world import EnsembleWorld
from pfd_tf.datasets.interactions import InteractionsWorld, generate_interactions
from pfd_tf.datasets.multitask import MultitaskWorld
from pfd_tf.datasets.multitask_config import generate_multitask_world

SCENARIOS = {"cvr": generate_cvr, "ctr": generate_ctr, "ensemble": generate_ensemble}
WORLDS = {"cvr": CvrWorld, "ctr": CtrWorld, "ensemble": EnsembleWorld}
SCENARIOS["interactions"], WORLDS["interactions"] = generate_interactions, InteractionsWorld  # KD-DAGFM's world
SCENARIOS["dial"], WORLDS["dial"] = generate_dial, DialWorld  # the soft-label hypothesis's dial
SCENARIOS["multitask"], WORLDS["multitask"] = generate_multitask_world, MultitaskWorld  # like and buy (issue 21)
_SIZED_BY_FLAGS = ("rows", "days")  # set by --rows and --days, not as world fields


def world_overrides(scenario: str, items: Sequence[str]) -> dict:
    """``["interacted_scale=2", ...]`` -> ``{"interacted_scale": 2.0}``, typed like the field's default.

    Raises ValueError naming the item for a malformed item, an unknown field
    or a value of the wrong type, before anything is simulated.
    """
    world = WORLDS[scenario]
    fields = {f.name: f for f in dataclasses.fields(world) if f.name not in _SIZED_BY_FLAGS}
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"world override {item!r}: expected key=value")
        if key in _SIZED_BY_FLAGS:
            raise ValueError(f"world override {item!r}: set {key} with --{key}, not as a world field")
        if key not in fields:
            raise ValueError(f"world override {item!r}: {world.__name__} has no field {key!r} "
                             f"(fields: {', '.join(sorted(fields))})")
        default = fields[key].default
        parts = text.split(",") if isinstance(default, tuple) else [text]
        kinds = [type(d) for d in default] if isinstance(default, tuple) else [type(default)]
        if len(parts) != len(kinds):
            raise ValueError(f"world override {item!r}: {key} takes {len(kinds)} comma-separated values")
        try:
            values = [kind(part) for kind, part in zip(kinds, parts)]
        except ValueError:
            raise ValueError(f"world override {item!r}: {key} takes "
                             f"{', '.join(k.__name__ for k in kinds)}, got {text!r}") from None
        value = tuple(values) if isinstance(default, tuple) else values[0]
        overrides[key] = value
    return overrides
