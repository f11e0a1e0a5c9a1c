"""How every dataset maker writes: columns as CSV text, one file per day, and a `config.yaml` with one
line per feature.

The layout (``train/day-DD.csv``, the last day in ``test/``, ``config.yaml`` written last, so a present
config means a whole world) is what the written configs' globs read and what `pfd-data --overwrite`
(:mod:`pfd_tf.datasets.output_dir`) replaces.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import yaml

DAY = "day"


@dataclasses.dataclass(frozen=True)
class Column:
    """One feature column: its type in memory/CSV and its config.yaml entry."""

    name: str
    dtype: str  # "str" | "int" | "float"
    kind: str  # "categorical" | "numeric" | "sequence"
    role: str  # "regular" | "privileged"
    side: str  # "user" | "item" | "context"
    dim: int
    vocabulary: tuple[str, ...] | None = None
    decimals: int = 0  # floats are rounded to this many decimals


class FlowDict(dict):
    """A mapping written on one line in config.yaml (one line per feature)."""


class ConfigDumper(yaml.SafeDumper):
    """yaml.SafeDumper that writes each :class:`FlowDict` on a single line."""


ConfigDumper.add_representer(
    FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))


def _round_sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def quantile_boundaries(values: np.ndarray, n: int = 20) -> list[float]:
    """~n strictly increasing bucket boundaries at the quantiles of ``values``."""
    qs = np.quantile(values.astype(np.float64), np.arange(1, n + 1) / (n + 1))
    return sorted({_round_sig(q) for q in qs.tolist()})


def count_boundaries(values: np.ndarray, n: int = 10) -> list[float]:
    """Boundaries for a count feature: zero alone, then ~n quantiles of the
    positive counts, placed half-way between integers."""
    positive = values[values > 0]
    qs = quantile_boundaries(positive, n) if len(positive) else []
    return sorted({0.5} | {float(np.floor(q)) + 0.5 for q in qs if q >= 1})


def as_strings(col: Column | None, values: np.ndarray) -> list[str]:
    """A column's values as CSV text: floats with the column's decimals, the rest by ``str``."""
    if col is not None and col.dtype == "float":
        return [f"{v:.{col.decimals}f}" for v in values.tolist()]
    return values.astype(str).tolist()


def write_csv(path: str, header: str, lines: list[str]) -> None:
    """One CSV file: the header, then the already joined lines (directories made as needed)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        if lines:
            f.write("\n".join(lines) + "\n")


def write_days(out_dir: str, header: str, lines: list[str], day: np.ndarray, days: int, config: dict) -> str:
    """Writes a world's rows (sorted by `day`) as `train/day-DD.csv` (the last day: `test/`) and its
    `config.yaml`; returns the config's path (written last: a present config means a whole world)."""
    bounds = np.searchsorted(day, np.arange(days + 1))
    for d in range(days):
        split = "test" if d == days - 1 else "train"
        write_csv(os.path.join(out_dir, split, f"day-{d:02d}.csv"), header, lines[bounds[d]:bounds[d + 1]])
    path = os.path.join(out_dir, "config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(config, f, Dumper=ConfigDumper, sort_keys=False, default_flow_style=None, width=1 << 16)
    return path


def feature_config(col: Column, n_buckets: int | None, train_values: np.ndarray,
                   max_len: int | None = None) -> dict:
    """The config.yaml entry of one feature column; ``max_len``: a sequence column's (required for one)."""
    if col.kind == "sequence" and max_len is None:
        raise ValueError(f"feature_config({col.name!r}): a sequence column needs max_len")
    entry = FlowDict(name=col.name, kind=col.kind)
    if col.kind == "numeric":
        entry["boundaries"] = quantile_boundaries(train_values)
    elif col.vocabulary is not None:
        entry["vocabulary"] = list(col.vocabulary)
    else:
        entry["hash_buckets"] = int(n_buckets)
    if col.kind == "sequence":
        entry["max_len"] = max_len
    entry.update(dim=col.dim, role=col.role, side=col.side)
    return entry
