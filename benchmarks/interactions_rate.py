"""The learning rate of `pfd-data --scenario interactions`' config, chosen on the validation world.

    python benchmarks/interactions_rate.py --out bench_out/interactions_rate [--seed 100] [--rows 400000]
        [--rates 0.001,0.003,0.01,0.03] [--set key=value ...]

World --seed (100: never an evaluation world) is written by `pfd-data
--scenario interactions`; its config (a DCN-v2 teacher co-trained with a
DAGFM student on soft labels) trains at each rate on the training days but
the last, and is scored on that last training day (`pfd_tf.compare.split`),
never on the test day.  The rate of the best student AUC is the one to write
into `pfd_tf.datasets.interactions.LEARNING_RATE`.  Prints, and writes
to OUT/rates.json, each rate's student and teacher AUC and log loss.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import common  # noqa: F401  (Keras 2 before TensorFlow)

from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.compare.split import validation_split
from pfd_tf.datasets.interactions import generate_interactions
from pfd_tf.trainer import train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rates", default="0.001,0.003,0.01,0.03")  # Adam's (the config's optimizer)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    world = os.path.join(args.out, f"world-{args.seed}")
    if not os.path.exists(os.path.join(world, "config.yaml")):
        generate_interactions(world, rows=args.rows, seed=args.seed)
    results = {}
    for rate in [float(r) for r in args.rates.split(",")]:
        model_dir = os.path.join(args.out, f"rate-{rate:g}")
        shutil.rmtree(model_dir, ignore_errors=True)
        keras.backend.clear_session()
        config = validation_split(config_lib.load(os.path.join(world, "config.yaml"),
                                                  [f"train.learning_rate={rate}"] + args.overrides))
        metrics = train(config, model_dir, verbose=0, export=False)
        results[f"{rate:g}"] = {"student": metrics["student"], "teacher": metrics["teachers"]}
        print(f"rate {rate:g}: student {metrics['student']}, teachers {metrics['teachers']}", flush=True)
    best = max(results, key=lambda r: results[r]["student"].get("auc", 0.0))
    print(f"best student validation AUC at rate {best}")
    with open(os.path.join(args.out, "rates.json"), "w") as f:
        json.dump({"seed": args.seed, "rows": args.rows, "overrides": args.overrides, "rates": results,
                   "best": best}, f, indent=1)


if __name__ == "__main__":
    main()
