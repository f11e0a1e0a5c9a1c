"""pfd-train: trains a teacher and a student as the config says, then exports the student.

    pfd-train --config configs/cvr.yaml --model_dir /tmp/run [--set distill.lambda=0.3 ...]
"""
from __future__ import annotations

import json
import sys

from absl import app, flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import DataError
from pfd_tf.export import ExportError

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file.", required=True)
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs, export and metrics.json.", required=True)
flags.DEFINE_multi_string("set", [], "Config override key=value, e.g. distill.lambda=0.3 (repeatable).")


def main(argv):
    del argv
    from pfd_tf.trainer import train  # imports TensorFlow: after flag parsing, for a fast --help

    try:
        config = config_lib.load(FLAGS.config, FLAGS.set)
        metrics = train(config, FLAGS.model_dir)
    except (config_lib.ConfigError, DataError, ExportError) as err:
        print(f"pfd-train: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: metrics[k] for k in ("mode", "student", "teacher", "steps", "examples_per_second")}))
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
