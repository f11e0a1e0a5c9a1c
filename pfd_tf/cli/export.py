"""pfd-export: writes the student of a trained run as a SavedModel.

    pfd-export --model_dir /tmp/run [--checkpoint PATH] [--out DIR]

Reads `model_dir/config.yaml` (with `model_dir/feature_stats.json`, the
normalization of numeric features fed as values) and the latest checkpoint in
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
from pfd_tf.run_dir import RunDirError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A pfd-train model_dir.", required=True)
flags.DEFINE_string("checkpoint", None, "Checkpoint to export (default: the latest in model_dir/checkpoints).")
flags.DEFINE_string("out", None, "Export directory (default: model_dir/export).")


def main(argv):
    del argv
    from absl import logging

    from pfd_tf._keras import tf

    logging.set_verbosity(logging.WARNING)  # SavedModel's INFO lines (signatures, assets) are no news
    tf.get_logger().setLevel("WARNING")
    from pfd_tf.checkpoints import listed, require_intact
    from pfd_tf.data import feature_stats
    from pfd_tf.data.pipeline import DataError
    from pfd_tf.export_two_tower import export_all

    try:
        saved = os.path.join(FLAGS.model_dir, "config.yaml")
        if not os.path.exists(saved):
            raise ExportError(f"{saved}: missing; --model_dir must be a directory pfd-train trained into")
        config = feature_stats.resolve(config_lib.load(saved), FLAGS.model_dir)
        checkpoints = os.path.join(FLAGS.model_dir, "checkpoints")
        checkpoint = FLAGS.checkpoint or (listed(checkpoints) or [None])[-1]  # the state file's latest
        if not checkpoint:
            raise ExportError(f"{checkpoints}: no checkpoint to export")
        if FLAGS.checkpoint and not tf.io.gfile.exists(checkpoint + ".index"):
            state = tf.train.get_checkpoint_state(checkpoints)
            known = ", ".join(os.path.basename(p) for p in state.all_model_checkpoint_paths) if state else "none"
            raise ExportError(f"--checkpoint {checkpoint}: no such checkpoint ({checkpoint}.index is missing); "
                              f"the run's checkpoints: {known}")
        require_intact(checkpoint)  # a damaged one is named, with the intact ones
        out = FLAGS.out or os.path.join(FLAGS.model_dir, "export")
        for name, path in export_all(config, checkpoint, out).items():
            print(f"{name}: {path}")
    except (config_lib.ConfigError, ExportError, DataError, RunDirError) as err:
        print(f"pfd-export: error: {err}", file=sys.stderr)
        return 2
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
