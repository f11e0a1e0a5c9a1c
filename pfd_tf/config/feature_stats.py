"""What a run resolves from its training files for value features (`encoding: value`) that left their mean
and std unset: the normalization each such feature's column gets (`pfd_tf.data.feature_stats` counts them)."""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

from pfd_tf.config.errors import ConfigError
from pfd_tf.config.features import FeatureSpec
from pfd_tf.config.schema import Config


def features_needing_stats(config: Config) -> tuple[FeatureSpec, ...]:
    """The value features whose mean and std the training files must give (`needs_stats`)."""
    return tuple(spec for spec in config.features if spec.needs_stats)


def with_feature_stats(config: Config, stats: Mapping[str, Mapping[str, float]]) -> Config:
    """The config with the mean and std of each value feature that left them unset, from `stats`.

    `stats` maps feature name to {"mean", "std"} of its transformed values
    over the training files (`pfd_tf.data.feature_stats`, what
    `model_dir/feature_stats.json` holds).  A std of 0 (a constant column)
    becomes 1, so nothing divides by zero: the feature is then 0 on every
    training row.  Features that set their own mean and std keep them.
    Raises ConfigError naming the feature when `stats` lacks one it needs.
    """
    features = []
    for i, spec in enumerate(config.features):
        if spec.needs_stats:
            found = stats.get(spec.name)
            if not isinstance(found, Mapping) or not {"mean", "std"} <= set(found):
                raise ConfigError(f"features[{i}].std: no mean and std for {spec.name!r} in the feature statistics")
            mean, std = float(found["mean"]), float(found["std"])
            if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
                raise ConfigError(f"features[{i}].std: bad statistics for {spec.name!r}: mean {mean}, std {std}")
            spec = dataclasses.replace(spec, mean=mean, std=std if std > 0 else 1.0)
        features.append(spec)
    return dataclasses.replace(config, features=tuple(features))
