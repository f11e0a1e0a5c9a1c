"""pfd-export: writes the student of a trained run as a SavedModel.

    pfd-export --model_dir RUN [--checkpoint PATH] [--out DIR] [--student NAME,...]

Reads `RUN/config.yaml` (with `RUN/feature_stats.json`, the normalization of
numeric features fed as values) and the latest checkpoint in
`RUN/checkpoints`.  `--out DIR` (default `RUN/export`) is an export
directory: it holds one SavedModel per exported model, `DIR/student/`, and
for a two-tower student also `DIR/user_tower/`, `DIR/item_tower/`,
`DIR/retrieval/` and `DIR/item_index.npz`.  Serve `DIR/student`, not DIR.
A run with several students (`students:`) exports each other student
`<name>` into `DIR/<name>/`, laid out the same way; `--student` names the
ones to export (default: all; `student` is the served one).
A previous export in DIR is replaced (and said so); a DIR that is itself a
SavedModel, or holds anything else, is refused (exit status 2), as is a
file.  The path of each SavedModel written is printed at the end.
"""
from __future__ import annotations

import os
import sys

from absl import flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf import config as config_lib
from pfd_tf.cli import usage
from pfd_tf.run_dir import RunDirError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A pfd-train model_dir.", required=True)
flags.DEFINE_string("checkpoint", None, "Checkpoint to export (default: the latest in model_dir/checkpoints).")
flags.DEFINE_string("out", None, "Export directory: gets student/ (the SavedModel to serve) and, for a two-tower "
                    "student, user_tower/, item_tower/, retrieval/, item_index.npz (default: model_dir/export).")
flags.DEFINE_list("student", None, "Students to export, by name (default: all; `student` is the served one, into "
                  "DIR/student/; another student <name> goes into DIR/<name>/).")

# What an export directory holds besides SavedModels: the two-tower item index.
EXPORT_FILES = ("item_index.npz",)


class ExportDirError(ValueError):
    """`--out` names something that is not an export directory; the message says what it is."""


def check_export_dir(out: str) -> list[str]:
    """Refuses an `--out` whose contents an export would overwrite or mix with; returns the
    SavedModels of a previous export found there (replaced by this one).

    An export directory holds only SavedModels (one directory each), `item_index.npz`, and
    `*.tmp` directories an interrupted export left.
    """
    if not os.path.exists(out):
        return []
    if not os.path.isdir(out):
        raise ExportDirError(f"--out {out}: a file; --out names an export directory (it gets {out}/student/)")
    if os.path.exists(os.path.join(out, "saved_model.pb")):
        raise ExportDirError(
            f"--out {out}: is itself a SavedModel; --out names the export directory that holds one SavedModel per "
            f"exported model ({out}/student/, ...): pass a new directory, or that SavedModel's parent")
    entries = sorted(os.listdir(out))
    previous = [e for e in entries if os.path.exists(os.path.join(out, e, "saved_model.pb"))
                or os.path.exists(os.path.join(out, e, "student", "saved_model.pb"))]  # another student's export
    foreign = [e for e in entries if e not in previous and e not in EXPORT_FILES and not e.endswith(".tmp")]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ExportDirError(
            f"--out {out}: holds {shown}, which no export wrote; --out names an export directory (it gets "
            f"{out}/student/): pass a new or empty directory, or one a previous export wrote")
    return previous


def main(argv):
    del argv
    try:  # what the flags name, checked before TensorFlow loads
        saved = os.path.join(FLAGS.model_dir, "config.yaml")
        if not os.path.exists(saved):
            raise ExportDirError(f"{saved}: missing; --model_dir must be a directory pfd-train trained into")
        out = FLAGS.out or os.path.join(FLAGS.model_dir, "export")
        previous = check_export_dir(out)
    except ExportDirError as err:
        print(f"pfd-export: error: {err}", file=sys.stderr)
        return 2
    return export(saved, out, previous)


def export(saved: str, out: str, previous: list[str]) -> int:
    """Exports the run whose config is `saved` into `out`; prints each SavedModel's path; the exit status."""
    from absl import logging

    from pfd_tf._keras import tf

    logging.set_verbosity(logging.WARNING)  # SavedModel's INFO lines (signatures, assets) are no news
    tf.get_logger().setLevel("WARNING")
    from pfd_tf.config.fingerprint import trained_config
    from pfd_tf.checkpoints import listed, require_intact
    from pfd_tf.data import feature_stats
    from pfd_tf.data.pipeline import DataError
    from pfd_tf.export import ExportError
    from pfd_tf.export_two_tower import export_all

    try:
        config = feature_stats.resolve(trained_config(FLAGS.model_dir), FLAGS.model_dir)  # refuses a hand edit
        checkpoints = os.path.join(FLAGS.model_dir, "checkpoints")
        checkpoint = FLAGS.checkpoint or (listed(checkpoints) or [None])[-1]  # the state file's latest
        if not checkpoint:
            raise ExportError(f"{checkpoints}: no checkpoint to export")
        if FLAGS.checkpoint and not tf.io.gfile.exists(checkpoint + ".index"):
            state = tf.train.get_checkpoint_state(checkpoints)
            known = ", ".join(os.path.basename(p) for p in state.all_model_checkpoint_paths) if state else "none"
            raise ExportError(f"--checkpoint {checkpoint}: no such checkpoint ({checkpoint}.index is missing); "
                              f"the run's checkpoints: {known}")
        unknown = [name for name in FLAGS.student or () if name not in config.student_names]
        if unknown:
            raise ExportError(f"--student {','.join(unknown)}: no such student (the run's students: "
                              f"{', '.join(config.student_names)})")
        require_intact(checkpoint)  # a damaged one is named, with the intact ones
        print(f"exporting {checkpoint}", flush=True)
        for name, path in export_all(config, checkpoint, out, FLAGS.student).items():
            replaced = " (replaced the previous export)" if name.split("/")[0] in previous else ""
            print(f"{name}: {path}{replaced}")
    except (config_lib.ConfigError, ExportError, DataError, RunDirError) as err:
        print(f"pfd-export: error: {err}", file=sys.stderr)
        return 2
    return 0


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
