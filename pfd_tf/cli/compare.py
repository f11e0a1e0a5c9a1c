"""pfd-compare: is distillation worth it on my data, and at which lambda?

    pfd-compare --config C --out DIR [--modes baseline,pfd,md] [--lambdas 0.1,0.3,0.5,0.7,0.9]
                [--seeds 0,1,2] [--rates 0.0125,0.025,0.05,0.1,0.2] [--set key=value ...]

Each method (every mode the config can train by default, and PFD at each
`--lambdas` value) gets its own learning rate from `--rates` (default: the
config's rate times 1/4, 1/2, 1, 2, 4), chosen by validation student AUC on
the last training file (or `data.validation_files`), held out of training
for that choice.  Then every method trains at its rate on each seed and is
evaluated on the held-out files (`data.eval_files`).  DIR gets `compare.md`
(the tables it prints), `compare.json` (every run) and `compare.png`, and
one model_dir per run under DIR/runs: started again, it reads back the runs
that finished and resumes the one that was interrupted.
"""
from __future__ import annotations

import sys

from absl import flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf.cli import usage

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file (the user's data).", required=True)
flags.DEFINE_string("out", None, "Output directory: the report and one model_dir per run.", required=True)
flags.DEFINE_string("modes", "", "Comma-separated modes (baseline is always added); default: every mode the "
                    "config can train.")
flags.DEFINE_string("lambdas", "", "PFD lambda sweep, comma-separated (Table 6); default: none.")
flags.DEFINE_string("seeds", "0,1,2", "Training seeds of the evaluation runs.")
flags.DEFINE_string("rates", "", "Learning-rate grid, comma-separated; default: the config's rate x 1/4..4.")
flags.DEFINE_multi_string("set", [], "Config override key=value for every run (repeatable).")
flags.DEFINE_string("title", "", "The report's title.")


def main(argv):
    del argv
    from absl import logging

    from pfd_tf import config as config_lib
    from pfd_tf._keras import tf
    from pfd_tf.compare.comparison import run_comparison
    from pfd_tf.data.pipeline import DataError
    from pfd_tf.run_dir import RunDirError

    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")
    try:
        run_comparison(FLAGS.config, FLAGS.out, modes=FLAGS.modes, lambdas=FLAGS.lambdas, seeds=FLAGS.seeds,
                       rates=FLAGS.rates, overrides=FLAGS.set, title=FLAGS.title,
                       log=lambda line: print(line, flush=True))
    except (config_lib.ConfigError, DataError, RunDirError) as err:
        print(f"pfd-compare: error: {err}", file=sys.stderr)
        return 2
    return 0


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
