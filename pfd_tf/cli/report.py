"""pfd-report: what each model of a trained run costs to serve, teachers included.

    pfd-report MODEL_DIR [--student NAME] [--noteachers] [--checkpoint PATH] [--repeats N] [--warmup N]
               [--batch_sizes 1,1024]

For each SavedModel under `MODEL_DIR/export/*/` (what pfd-train and
pfd-export write) and, unless --noteachers, each teacher of the run rebuilt
from its checkpoint (the latest in `MODEL_DIR/checkpoints`, or --checkpoint):
trainable parameters (embedding tables and the rest apart), FLOPs per
example counted over the serving graph, and latency per example (the median
of --repeats calls after --warmup calls, at each batch size).  Prints a
table and each teacher's ratio to the student, and writes it all to
`MODEL_DIR/cost_report.json`.  With --student NAME (a run of several
students: `students:`), the SavedModels of that student instead
(`MODEL_DIR/export/NAME/*/`), beside the teachers with its ratios, written
to `MODEL_DIR/export/NAME/cost_report.json` (what `train.cost_report` writes
for it); a NAME that is not one of the run's students, or one without an
export, is refused (exit status 2).  A MODEL_DIR that is not a pfd-train run, or
holds nothing to measure, is refused (exit status 2) before anything is written.
"""
from __future__ import annotations

import os
import sys

from absl import flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf.cli import usage

FLAGS = flags.FLAGS
flags.DEFINE_boolean("teachers", True, "Also measure the run's teachers, rebuilt from its checkpoint.")
flags.DEFINE_string("checkpoint", None, "Checkpoint to rebuild the teachers from (default: the latest in "
                    "MODEL_DIR/checkpoints).")
flags.DEFINE_integer("warmup", 5, "Calls before timing, at each batch size.", lower_bound=0)
flags.DEFINE_integer("repeats", 30, "Timed calls at each batch size; the median is reported.", lower_bound=1)
flags.DEFINE_list("batch_sizes", ["1", "1024"], "Batch sizes to time, comma-separated.")
flags.DEFINE_string("student", None, "A student of a several-students run (`students:`) to report instead of "
                    "the served one: its export under MODEL_DIR/export/NAME/, its report written there.")


def main(argv):
    if len(argv) != 2:
        print("pfd-report: error: give one MODEL_DIR (a directory pfd-train trained into)", file=sys.stderr)
        return 2
    model_dir = argv[1]
    try:
        batches = [int(b) for b in FLAGS.batch_sizes]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        print(f"pfd-report: error: --batch_sizes {','.join(FLAGS.batch_sizes)}: list positive integers",
              file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(model_dir, "config.yaml")):
        print(f"pfd-report: error: {os.path.join(model_dir, 'config.yaml')}: missing; MODEL_DIR must be a "
              "directory pfd-train trained into", file=sys.stderr)
        return 2
    return report(model_dir, batches)


def report(model_dir: str, batches: list[int]) -> int:
    """Measures the run in `model_dir`, prints the table, writes cost_report.json; the exit status."""
    from absl import logging

    from pfd_tf._keras import tf

    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")  # Keras' notes on restoring a partial checkpoint are no news here
    from pfd_tf import config as config_lib
    from pfd_tf import cost_report
    from pfd_tf.data.pipeline import DataError

    try:
        export_dir = student_export_dir(model_dir, FLAGS.student)
        results = cost_report.report(model_dir, teachers=FLAGS.teachers, checkpoint=FLAGS.checkpoint,
                                     batches=batches, warmup=FLAGS.warmup, repeats=FLAGS.repeats,
                                     export_dir=export_dir)
    except (config_lib.ConfigError, cost_report.ReportError, DataError) as err:
        print(f"pfd-report: error: {err}", file=sys.stderr)
        return 2
    print(cost_report.table(results))
    print(f"written: {cost_report.write(export_dir or model_dir, results)}")
    return 0


def student_export_dir(model_dir: str, student: str | None) -> str | None:
    """Where student `student`'s SavedModels are (None: the served student's, `export/`); ReportError naming
    --student for a name that is not one of the run's students or has no SavedModel there."""
    from pfd_tf import cost_report
    from pfd_tf.config.fingerprint import trained_config
    from pfd_tf.names import SERVED

    if student is None or student == SERVED:
        return None
    names = trained_config(model_dir).student_names
    if student not in names:
        raise cost_report.ReportError(f"--student {student}: not a student of this run (its students: "
                                      f"{', '.join(names)})")
    export_dir = os.path.join(model_dir, "export", student)
    if not cost_report.exports(model_dir, export_dir):
        raise cost_report.ReportError(f"--student {student}: no SavedModel under {export_dir}: export the run "
                                      "(pfd-export)")
    return export_dir


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
