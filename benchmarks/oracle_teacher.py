"""How much can soft labels give the two-tower student at best?  An oracle teacher on the CTR world.

    python benchmarks/oracle_teacher.py --out bench_out/oracle [--seed 0] [--rows 600000]
        [--rates 0.8,3.2] [--lambdas 0.5,0.9] [--world FIELD=VALUE ...] [--set key=value ...]

A teacher can be no better than the world's own click probability.  This
script writes the synthetic CTR world (`pfd-data --scenario ctr`) with one
extra column, `oracle_logit`: each impression's true click logit without its
impression-level noise (the click is Bernoulli(sigmoid(oracle_logit + eps))).
It becomes the *only* privileged feature (the interacted counts are left out
of the config), and LUPI's teacher, an MLP over privileged features alone,
learns sigmoid(oracle_logit) within a few dozen steps.  The student is the
usual two-tower model, so its gain over the baseline at each learning rate is
the most any soft-label distillation (PFD, MD, PFD+MD) can give it there.

It answers "is the student short of *knowledge*, or of something soft labels
cannot fix (its inner-product form, its one epoch)?" before blaming a teacher.
Prints a markdown table of held-out student AUC per rate and writes every
run's metrics to `OUT/results.json`.
"""
from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np
import yaml
from common import add_world_argument, parse_world, run

from pfd_tf.datasets.ctr import simulate_ctr
from pfd_tf.datasets.ctr_config import write_ctr_dataset
from pfd_tf.datasets.ctr_world import DEFAULT_ROWS, CtrWorld

ORACLE = "oracle_logit"


def write_oracle_world(out_dir: str, rows: int, seed: int, **world) -> str:
    """The CTR world of `seed` with `oracle_logit` as its only privileged feature; returns config.yaml's path."""
    world = CtrWorld.for_rows(rows, **world)
    columns = simulate_ctr(world, seed, latents=True)
    config_path = write_ctr_dataset(columns, world, seed, out_dir)
    logits = np.round(columns["logit"], 3)
    # write_ctr_dataset writes the rows in order, one file per day, train days first.
    files = sorted(glob.glob(os.path.join(out_dir, "train", "*.csv"))) + sorted(
        glob.glob(os.path.join(out_dir, "test", "*.csv")))
    row = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            header, *lines = f.read().splitlines()
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{header},{ORACLE}\n")
            for line in lines:
                f.write(f"{line},{logits[row]}\n")
                row += 1
    if row != len(logits):
        raise RuntimeError(f"{out_dir}: wrote {row} rows, simulated {len(logits)}")
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    boundaries = np.unique(np.round(np.quantile(logits, np.linspace(0.01, 0.99, 99)), 3))
    config["features"] = [f for f in config["features"] if f.get("role") != "privileged"] + [
        {"name": ORACLE, "kind": "numeric", "boundaries": boundaries.tolist(), "dim": 8,
         "role": "privileged", "side": "user"}]
    with open(config_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return config_path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench_out/oracle")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--rates", default="0.8,3.2")
    parser.add_argument("--lambdas", default="0.5,0.9")
    add_world_argument(parser)
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args()
    world = parse_world(parser, "ctr", args.world)
    rates = [float(x) for x in args.rates.split(",") if x]
    lambdas = [float(x) for x in args.lambdas.split(",") if x]

    config_path = write_oracle_world(os.path.join(args.out, "data"), args.rows, args.seed, **world)
    results = []
    for rate in rates:
        for lam in [None, *lambdas]:
            mode = "baseline" if lam is None else "lupi"
            name = f"{mode}-lr{rate}" + ("" if lam is None else f"-lambda{lam}")
            overrides = [f"distill.mode={mode}", f"train.seed={args.seed}", *args.set,
                         f"train.learning_rate={rate}"] + ([] if lam is None else [f"distill.lambda={lam}"])
            metrics = run(config_path, os.path.join(args.out, "runs", name), overrides)
            results.append({"rate": rate, "lambda": lam, "student": metrics["student"],
                            "teacher": metrics["teacher"]})
            teacher = metrics["teacher"]["auc"] if metrics["teacher"] else float("nan")
            print(f"{name}: student AUC {metrics['student']['auc']:.4f}  teacher AUC {teacher:.4f}", flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=2)

    def auc(rate, lam):
        return next(r["student"]["auc"] for r in results if r["rate"] == rate and r["lambda"] == lam)

    where = "".join(f", {w}" for w in args.world)
    print(f"\nTwo-tower student AUC with an oracle teacher (CTR world, seed {args.seed}, {args.rows} rows{where})\n")
    print("| rate | baseline | " + " | ".join(f"oracle λ={lam}" for lam in lambdas) + " |")
    print("|---" * (len(lambdas) + 2) + "|")
    for rate in rates:
        cells = [f"{auc(rate, lam):.4f} ({auc(rate, lam) - auc(rate, None):+.4f})" for lam in lambdas]
        print(f"| {rate} | {auc(rate, None):.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
