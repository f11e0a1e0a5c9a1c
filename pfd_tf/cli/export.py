"""pfd-export: writes the student of a trained run as a SavedModel.

    pfd-export --model_dir /tmp/run [--checkpoint PATH] [--out DIR]

Reads `model_dir/config.yaml` and the latest checkpoint in
`model_dir/checkpoints`; writes `model_dir/export/` (or `--out`): `student/`,
and for a two-tower student also `user_tower/`, `item_tower/`,
`item_index.npz` and `retrieval/`.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf import config as config_lib
from pfd_tf.export import ExportError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A pfd-train model_dir.", required=True)
flags.DEFINE_string("checkpoint", None, "Checkpoint to export (default: the latest in model_dir/checkpoints).")
flags.DEFINE_string("out", None, "Export directory (default: model_dir/export).")


def main(argv):
    del argv
    from pfd_tf._keras import tf
    from pfd_tf.data.pipeline import DataError
    from pfd_tf.export_two_tower import export_all

    try:
        config = config_lib.load(os.path.join(FLAGS.model_dir, "config.yaml"))
        checkpoint = FLAGS.checkpoint or tf.train.latest_checkpoint(os.path.join(FLAGS.model_dir, "checkpoints"))
        if not checkpoint:
            raise ExportError(f"{FLAGS.model_dir}/checkpoints: no checkpoint to export")
        out = FLAGS.out or os.path.join(FLAGS.model_dir, "export")
        for name, path in export_all(config, checkpoint, out).items():
            print(f"{name}: {path}")
    except (config_lib.ConfigError, ExportError, DataError) as err:
        print(f"pfd-export: error: {err}", file=sys.stderr)
        return 2
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
