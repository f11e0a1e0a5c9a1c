"""pfd-eval: scores a trained run on other files, exactly as its held-out numbers were scored.

    pfd-eval --model_dir /tmp/run --files 'test/*.csv' [--files ...] [--checkpoint final|best] [--out FILE]
             [--allow-train-files]

Scores the run's final checkpoint (or with `--checkpoint best` the one early
stopping kept) on every row of the files, with the run's config and its
`Evaluator`: the same exact AUC and log loss per network as metrics.json's.
Prints the JSON and writes it to `--out` (default: a new file under
`model_dir/eval/`); metrics.json is never touched.  See `pfd_tf.eval_run`.
Exit status 0, or 2 with the reason on stderr, nothing written.
"""
from __future__ import annotations

from absl import flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf.cli import usage

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A pfd-train model_dir.", required=True)
flags.DEFINE_multi_string("files", None, "Glob of the files to score (repeatable), in the run's data format.",
                          required=True)
flags.DEFINE_enum("checkpoint", "final", ["final", "best"],
                  "final: the run's latest checkpoint; best: the one early stopping kept (model_dir/best).")
flags.DEFINE_string("out", None, "JSON file to write (default: model_dir/eval/<name>.json).")
flags.DEFINE_boolean("allow-train-files", False, "Score files the run trained on (refused without it: "
                     "their numbers flatter the model).")
flags.DEFINE_alias("allow_train_files", "allow-train-files")


def main(argv):
    del argv
    from pfd_tf.eval_run import evaluate_run

    return evaluate_run(FLAGS.model_dir, FLAGS.files, FLAGS.checkpoint, FLAGS.out, FLAGS["allow-train-files"].value)


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
