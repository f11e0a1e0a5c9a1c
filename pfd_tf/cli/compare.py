"""pfd-compare: is distillation worth it on my data, and at which lambda?

    pfd-compare --config C --out DIR [--modes baseline,pfd,md] [--lambdas 0.1,0.3,0.5,0.7,0.9]
                [--seeds 0,1,2] [--rates 0.0125,0.025,0.05,0.1,0.2] [--normalizations none,batch,layer]
                [--embedding_l2 0,1e-6] [--grid key=v1,v2 ...] [--validation_config V] [--set key=value ...]

Each method (every mode the config can train by default, and PFD at each
`--lambdas` value) trains at every point of one grid, the same for every
method: the rates of `--rates` (default: the config's rate times 1/4, 1/2,
1, 2, 4) x the tower normalizations of `--normalizations` (default: all
three; the best rate moves with the normalization) x `--embedding_l2` (off
by default) x each `--grid` axis.  Each method keeps its best point by
validation student AUC on the last training file (or `data.validation_files`),
held out of training for that choice; with `--validation_config V`, on V's
validation split instead (another world or dataset; V may not read C's
held-out files).  Then every method trains at its point on each seed and is
evaluated on C's held-out files (`data.eval_files`).  A run whose loss
diverges is recorded as diverged and the comparison goes on.  DIR gets
`compare.md` (the tables it prints), `compare.json` (every run) and
`compare.png`, and one model_dir per run under DIR/runs, each with its
console in `train.log`: started again, it reads back the runs that finished
and resumes the one that was interrupted.
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
flags.DEFINE_string("normalizations", "none,batch,layer", "Tower normalizations in the grid (model.normalization), "
                    "comma-separated; empty: the config's own only.")
flags.DEFINE_string("embedding_l2", "", "train.embedding_l2 values in the grid, comma-separated (e.g. 0,1e-6); "
                    "default: the config's own only.")
flags.DEFINE_multi_string("grid", [], "A grid axis key=v1,v2,... for any config key (repeatable); commas inside "
                          "brackets belong to a value (model.student_tower=[64,32],[128,64]).")
flags.DEFINE_string("validation_config", None, "Choose the grid points on this config's validation split "
                    "(another world or dataset) instead of --config's; it may not read --config's held-out files.")
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
        chosen_on = FLAGS.validation_config or FLAGS.config
        title = FLAGS.title or f"pfd-compare: {FLAGS.config}" + (
            f" (grid points chosen on {FLAGS.validation_config})" if FLAGS.validation_config else "")
        run_comparison(chosen_on, FLAGS.out, modes=FLAGS.modes, lambdas=FLAGS.lambdas, seeds=FLAGS.seeds,
                       rates=FLAGS.rates, overrides=FLAGS.set, title=title,
                       config_for_seed=lambda seed: FLAGS.config, normalizations=FLAGS.normalizations,
                       embedding_l2=FLAGS.embedding_l2, grid=FLAGS.grid, log=lambda line: print(line, flush=True))
    except (config_lib.ConfigError, DataError, RunDirError) as err:
        print(f"pfd-compare: error: {err}", file=sys.stderr)
        return 2
    return 0


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
