"""The mean and std of each numeric feature fed as its value, from one pass over the training files.

A numeric feature with `encoding: value` reaches the model as
`(transform(x) - mean) / std` (`pfd_tf.features`).  When its config leaves
`mean` and `std` unset, the run computes them as it starts (`compute`):
every training row is parsed by the parse function training uses, its value
filled and transformed as the encoder does it (a value that is not finite
is the feature's `default`, `features.filled_numeric`), and the moments accumulated in
float64 batch by batch (Chan et al.'s pairwise update; the population std,
numpy's default).  No feature needing them: no pass at all.

The statistics are part of what the run trained, but the saved `config.yaml`
stays as the user wrote it (the run's identity, `pfd_tf.run_dir`); they go to
`model_dir/feature_stats.json` (`write`), written before `config.yaml`.  A
resumed run reads them back (`for_run`), and `pfd-export` and the evaluator
sidecar resolve the run's config with them (`resolve`, which points it at
the run's vocabularies too: `pfd_tf.data.vocab`), so every process
normalizes and looks up as the student trained.  `config.with_feature_stats` fills them in.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from pfd_tf._keras import tf
from pfd_tf import run_dir
from pfd_tf.config import Config, ConfigError, features_needing_stats, with_feature_stats
from pfd_tf.data.checks import diagnose
from pfd_tf.data.files import DataError, file_order, layout, resolve_files, tf_reason
from pfd_tf.data.parse import PARSE_BATCH, parser
from pfd_tf.features import filled_numeric, numeric_transform


class _Moments:
    """Row count, mean and sum of squared deviations, merged batch by batch in float64."""

    def __init__(self):
        self.rows, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        values = values.astype(np.float64).reshape(-1)
        rows = values.size
        if not rows:
            return
        mean = float(values.mean())
        delta, total = mean - self.mean, self.rows + rows
        self.m2 += float(np.square(values - mean).sum()) + delta * delta * self.rows * rows / total
        self.mean += delta * rows / total
        self.rows = total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.rows)) if self.rows else 0.0


def compute(config: Config) -> dict[str, dict]:
    """{feature: {"column", "transform", "rows", "mean", "std"}} of every feature that `needs_stats`.

    Raises DataError naming the file and line (or record) of a row that
    does not parse.  A value that is not finite counts as the feature's
    `default`, as the encoder reads it (so no NaN reaches the moments).
    """
    specs = features_needing_stats(config)
    if not specs:
        return {}
    files = resolve_files(config, "train_files")
    parse = parser(config, files, check_labels=False)

    def transformed(records):
        raw = parse(records)
        return {s.name: numeric_transform(filled_numeric(s, raw[s.source])[0], s.transform) for s in specs}

    batches = file_order(files, *layout(config)).batch(PARSE_BATCH).map(transformed)
    moments = {spec.name: _Moments() for spec in specs}
    try:
        for batch in batches:
            for spec in specs:
                moments[spec.name].add(batch[spec.name].numpy())
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
        raise DataError(diagnose(config, files) or f"data.train_files: {tf_reason(err)}") from err
    return {spec.name: {"column": spec.source, "transform": spec.transform.value, "rows": moments[spec.name].rows,
                        "mean": moments[spec.name].mean, "std": moments[spec.name].std} for spec in specs}


def path_in(model_dir: str) -> str:
    return os.path.join(model_dir, run_dir.FEATURE_STATS)


def write(model_dir: str, stats: Mapping[str, Mapping]) -> None:
    """Writes `model_dir/feature_stats.json` (atomically)."""
    path = path_in(model_dir)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"features": dict(stats)}, f, indent=2)
    os.replace(path + ".tmp", path)


def read(model_dir: str) -> dict[str, dict] | None:
    """The statistics in `model_dir/feature_stats.json`, or None if there is none."""
    path = path_in(model_dir)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)["features"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: cannot read the run's feature statistics ({err})") from None
    if not isinstance(stats, dict):
        raise ConfigError(f"{path}: cannot read the run's feature statistics (no 'features' mapping)")
    return stats


def for_run(config: Config, model_dir: str, resume: bool) -> dict[str, dict]:
    """The statistics a run starting in `model_dir` uses: read back on a resume, else computed."""
    needed = features_needing_stats(config)
    if not needed:
        return {}
    saved = read(model_dir) if resume else None
    if saved is not None and all(spec.name in saved for spec in needed):
        return {spec.name: saved[spec.name] for spec in needed}
    return compute(config)


def resolve(config: Config, model_dir: str) -> Config:
    """`config` (a run's) with what its run took from the training files: the mean and std it computed
    (`model_dir/feature_stats.json`) and the vocabularies it kept (`pfd_tf.data.vocab.resolve`)."""
    from pfd_tf.data import vocab  # here: vocab's own imports need nothing of this module

    config = vocab.resolve(config, model_dir)
    needed = features_needing_stats(config)
    if not needed:
        return config
    stats = read(model_dir)
    if stats is None:
        raise ConfigError(f"{path_in(model_dir)}: missing; feature {needed[0].name!r} (encoding: value, no std "
                          "set) needs the mean and std its run computed from the training files")
    return with_feature_stats(config, stats)
