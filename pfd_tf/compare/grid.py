"""The grid a comparison chooses each method's setting from: a list of override dicts, the same for every method.

A strong baseline needs more than its learning rate: on the CVR validation
world the tower's normalization moves the best AUC by 0.03 and the best
Adagrad rate by a factor of 30 (docs/results.md, issue 11), and on other data
the winner changes.  So every choice that decides how strong a method is goes
into one grid: axes (a config key and its values: `train.learning_rate`,
`model.normalization`, `train.embedding_l2`, any key of `--grid`), expanded
to their cartesian product.  Each grid point is a set of config overrides;
every method trains at every point on the validation data and keeps its best
(`runs.choose_points`), so no method is compared at a setting tuned for
another.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any, Sequence

import yaml

from pfd_tf.config import ConfigError

LEARNING_RATE = "train.learning_rate"
NORMALIZATION = "model.normalization"
EMBEDDING_L2 = "train.embedding_l2"
# Short names in run directories and report cells (any other key: its last part).
SHORT_NAMES = {LEARNING_RATE: "lr", NORMALIZATION: "norm", EMBEDDING_L2: "l2"}
# Keys each method sets itself (`methods.Method.overrides`): never a grid axis.
METHOD_KEYS = ("distill.mode", "distill.lambda", "train.seed")


def yaml_text(value: Any) -> str:
    """`value` as an override's YAML text that reads back as `value` (1e-06 -> `1.0e-06`, not the string `1e-06`)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).split("\n...")[0].strip()


def parse_value(text: str) -> Any:
    """A value as typed on the command line: YAML, except that `1e-6` (a string to YAML 1.1) is the number."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@dataclasses.dataclass(frozen=True)
class Axis:
    """One config key and the values the grid tries for it (as YAML texts, in the order given)."""

    key: str
    texts: tuple[str, ...]

    @classmethod
    def of(cls, key: str, values: Sequence[Any], flag: str) -> "Axis":
        if not values:
            raise ConfigError(f"{flag}: no values for {key}")
        texts = tuple(dict.fromkeys(yaml_text(v) for v in values))
        return cls(key, texts)

    def values(self) -> list[Any]:
        return [yaml.safe_load(t) for t in self.texts]

    def numeric(self) -> bool:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values())


def parse_axis(spec: str, flag: str = "--grid") -> Axis:
    """`key=v1,v2,...` -> an Axis; commas inside brackets belong to the value (`model.student_tower=[16,8],[32]`)."""
    if "=" not in spec:
        raise ConfigError(f"{flag} {spec!r}: expected key=value1,value2,...")
    key, text = (part.strip() for part in spec.split("=", 1))
    if not key:
        raise ConfigError(f"{flag} {spec!r}: the key is empty")
    values = [parse_value(item) for item in split_values(text)]
    return Axis.of(key, values, f"{flag} {key}")


def split_values(text: str) -> list[str]:
    """Splits at the commas outside brackets and braces; empty items dropped."""
    items, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """One setting of every axis: ((key, YAML text), ...), in the axes' order."""

    settings: tuple[tuple[str, str], ...]

    def overrides(self) -> list[str]:
        return [f"{key}={text}" for key, text in self.settings]

    def as_dict(self) -> dict[str, Any]:
        return {key: yaml.safe_load(text) for key, text in self.settings}

    def value(self, key: str) -> Any:
        return self.as_dict().get(key)

    @property
    def label(self) -> str:
        """`lr 0.8, norm batch`: how the report names the point."""
        return ", ".join(f"{_short(key)} {_shown(text)}" for key, text in self.settings)

    @property
    def slug(self) -> str:
        """The point's part of a run directory's name: `lr0.8` (the rate alone, as before the grid), or
        `lr0.8-norm_batch-l2_1e-06`."""
        parts = []
        for key, text in self.settings:
            shown = re.sub(r"[^A-Za-z0-9.+-]+", "_", _shown(text)).strip("_")
            parts.append(f"lr{shown}" if key == LEARNING_RATE else f"{_short(key)}_{shown}")
        return "-".join(parts)


def _short(key: str) -> str:
    return SHORT_NAMES.get(key, key.rsplit(".", 1)[-1])


def _shown(text: str) -> str:
    value = yaml.safe_load(text)
    return f"{value:g}" if isinstance(value, float) else text


@dataclasses.dataclass(frozen=True)
class Grid:
    """Axes expanded to their cartesian product (the first axis varies slowest)."""

    axes: tuple[Axis, ...]

    @classmethod
    def of(cls, axes: Sequence[Axis], fixed_overrides: Sequence[str] = ()) -> "Grid":
        """Refuses a key given twice, a key each method sets, and a key `--set` fixes too."""
        seen = set()
        for axis in axes:
            if axis.key in seen:
                raise ConfigError(f"--grid {axis.key}: the key is in the grid twice (--rates, --normalizations, "
                                  "--embedding_l2 and --grid each add one key); give its values once")
            if axis.key in METHOD_KEYS:
                raise ConfigError(f"--grid {axis.key}: each method sets it (modes, --lambdas, --seeds)")
            seen.add(axis.key)
        for item in fixed_overrides:
            key = item.split("=", 1)[0].strip()
            if key in seen:
                raise ConfigError(f"--set {key}: the grid tries values of {key} too; give them to the grid only "
                                  "(one value is a fixed setting)")
        return cls(tuple(axes))

    def points(self) -> list[GridPoint]:
        return [GridPoint(tuple(zip((a.key for a in self.axes), texts)))
                for texts in itertools.product(*(a.texts for a in self.axes))]

    def axis(self, key: str) -> Axis | None:
        return next((a for a in self.axes if a.key == key), None)

    def to_dict(self) -> dict[str, list]:
        return {a.key: a.values() for a in self.axes}


def edge_notes(method_name: str, grid: Grid, scores: dict[GridPoint, Any]) -> list[str]:
    """Where a method's best value of a numeric axis is at the grid's edge: the grid may be too narrow there.

    For each numeric axis and each setting of the other axes (e.g. the rate
    with normalization batch), the best point of that slice is found; at the
    largest value, or at the smallest where that is above zero, the note says
    so.  `scores`: the comparable validation score of each point that trained
    (diverged points have none).
    """
    notes = []
    for axis in grid.axes:
        if len(axis.texts) < 2 or not axis.numeric():
            continue
        others = [a for a in grid.axes if a is not axis]
        for other_texts in itertools.product(*(a.texts for a in others)):
            fixed = dict(zip((a.key for a in others), other_texts))
            in_slice = {p: s for p, s in scores.items() if all(dict(p.settings)[k] == t for k, t in fixed.items())}
            if not in_slice:
                continue
            best = max(in_slice, key=in_slice.get)
            value = yaml.safe_load(dict(best.settings)[axis.key])
            values = axis.values()
            edge = "largest" if value == max(values) else "smallest" if value == min(values) and value > 0 else None
            if edge is None:
                continue
            where = ", ".join(f"{_short(k)} {_shown(t)}" for k, t in fixed.items())
            notes.append(f"{method_name}{' with ' + where if where else ''}: best {_short(axis.key)} "
                         f"{_shown(dict(best.settings)[axis.key])} is the grid's {edge}")
    return notes
