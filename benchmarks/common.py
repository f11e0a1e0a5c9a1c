"""What the benchmark scripts share: one training run from a config file, and table cells."""
from __future__ import annotations

import shutil
import statistics

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.datasets.scenarios import world_overrides
from pfd_tf.trainer import train


def run(config_path: str, model_dir: str, overrides) -> dict:
    """Trains the config with `overrides` from scratch in a fresh Keras session; returns metrics.json's content.

    A leftover `model_dir` (from an earlier benchmark run) is removed first: `train` would resume from it.
    """
    shutil.rmtree(model_dir, ignore_errors=True)
    keras.backend.clear_session()
    config = config_lib.load(config_path, list(overrides))
    return train(config, model_dir, verbose=0)


def fmt(values) -> str:
    """`mean ± std` of AUCs (the value alone for one, `-` for none; a None, a run with no score, is left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def add_world_argument(parser) -> None:
    """`--world FIELD=VALUE` (repeatable): a field of the scenario's world dataclass, for every world."""
    parser.add_argument("--world", action="append", default=[],
                        help="FIELD=VALUE of the world dataclass, for every world (e.g. interacted_scale=2)")


def parse_world(parser, scenario: str, items) -> dict:
    """The typed `--world` overrides, or a usage error naming the bad item."""
    try:
        return world_overrides(scenario, items)
    except ValueError as err:
        parser.error(str(err))
