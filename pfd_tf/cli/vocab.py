"""`pfd-vocab`: counts the vocabularies of a config's `min_count` features in one pass over its training files.

    pfd-vocab --config configs/criteo.yaml --out data/criteo/vocab [--set KEY=VALUE ...] [--overwrite]

Writes `OUT/<feature>.txt` for every feature with `min_count` (one token
per line, most frequent first: line n is id n, 0 the out-of-vocabulary id),
and `OUT/vocabularies.json` (the min_count, tokens kept and distinct tokens
of each, the training files read).  Point the config at them with
`data.vocabulary_dir: OUT` (or `--set data.vocabulary_dir=OUT`): every run
then copies them instead of counting them again as it starts
(`pfd_tf.data.vocab`).  Existing files in OUT are refused unless
`--overwrite`.  Errors go to stderr as `pfd-vocab: error: ...` with exit
status 2, before anything is written.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

import pfd_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf import config as config_lib
from pfd_tf.cli import usage

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file.", required=True)
flags.DEFINE_string("out", None, "Directory for <feature>.txt and vocabularies.json (created if missing).",
                    required=True)
flags.DEFINE_multi_string("set", [], "Config override key=value, e.g. features.C1.min_count=20 (repeatable).")
flags.DEFINE_boolean("overwrite", False, "Replace vocabulary files already in --out.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from absl import logging

    from pfd_tf._keras import tf
    from pfd_tf.data import vocab
    from pfd_tf.data.files import DataError

    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    try:
        vocabularies = vocab.write_vocabularies(FLAGS.config, FLAGS.out, FLAGS.set, FLAGS.overwrite)
    except (config_lib.ConfigError, DataError) as err:
        print(f"pfd-vocab: error: {err}", file=sys.stderr)
        return 2
    for name, v in vocabularies.items():
        print(f"{name}: {len(v.tokens)} tokens seen >= {v.min_count} times, of {v.distinct} distinct "
              f"in {v.rows} rows -> {os.path.join(FLAGS.out, name + '.txt')}")
    print(f"use them with data.vocabulary_dir: {os.path.abspath(FLAGS.out)} "
          f"(or --set data.vocabulary_dir={os.path.abspath(FLAGS.out)})")
    return 0


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
