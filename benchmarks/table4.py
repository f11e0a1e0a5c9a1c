"""Reproduces the shape of Tables 4 and 6 of the PFD paper on the synthetic CVR world.

    python benchmarks/table4.py --out bench_out/table4 [--seeds 0,1,2] [--rows 200000]
        [--modes baseline,lupi,md,pfd,pfd_md] [--lambdas 0.1,0.3,0.5,0.7,0.9] [--set key=value ...]

For each seed it generates the world (`pfd-data --scenario cvr --seed S`) and
trains every mode on it, then a lambda sweep of PFD; it prints markdown tables
of held-out student and teacher AUC (mean and standard deviation over seeds)
and writes every run's metrics to `OUT/results.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.data.synthetic import generate_cvr
from pfd_tf.trainer import train


def _run(config_path, model_dir, overrides):
    keras.backend.clear_session()
    config = config_lib.load(config_path, overrides)
    return train(config, model_dir, verbose=0)


def _fmt(values):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench_out/table4")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--modes", default="baseline,lupi,md,pfd,pfd_md")
    parser.add_argument("--lambdas", default="0.1,0.3,0.5,0.7,0.9", help="PFD lambda sweep; empty to skip")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    lambdas = [float(x) for x in args.lambdas.split(",") if x]
    os.makedirs(args.out, exist_ok=True)
    results = []
    started = time.perf_counter()
    for seed in seeds:
        config_path = generate_cvr(os.path.join(args.out, f"data-{seed}"), rows=args.rows, seed=seed)
        default_lambda = config_lib.load(config_path).distill.lambda_
        runs = [(mode, None) for mode in modes] + [("pfd", lam) for lam in lambdas]
        for mode, lam in runs:
            if lam == default_lambda and "pfd" in modes:  # the Table 4 PFD run already is this one
                row = next(r for r in results if r["mode"] == "pfd" and r["seed"] == seed and r["lambda"] is None)
                results.append({**row, "lambda": lam})
                continue
            name = f"{mode}-seed{seed}" + (f"-lambda{lam}" if lam is not None else "")
            overrides = [f"distill.mode={mode}", f"train.seed={seed}", *args.set]
            if lam is not None:
                overrides.append(f"distill.lambda={lam}")
            metrics = _run(config_path, os.path.join(args.out, "runs", name), overrides)
            row = {"mode": mode, "seed": seed, "lambda": lam, **{k: metrics[k] for k in ("student", "teacher", "train_seconds")}}
            results.append(row)
            teacher = metrics["teacher"]["auc"] if metrics["teacher"] else float("nan")
            print(f"{name}: student AUC {metrics['student']['auc']:.4f}  teacher AUC {teacher:.4f}  "
                  f"{metrics['train_seconds']:.1f}s", flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=2)

    def aucs(mode, who, lam=None):
        return [r[who]["auc"] for r in results if r["mode"] == mode and r["lambda"] == lam and r[who]]

    print(f"\nTable 4 (synthetic CVR, {args.rows} rows, seeds {args.seeds}): held-out AUC, mean ± std\n")
    print("| method | student | teacher |\n|---|---|---|")
    for mode in modes:
        print(f"| {mode} | {_fmt(aucs(mode, 'student'))} | {_fmt(aucs(mode, 'teacher'))} |")
    if "baseline" in modes and "pfd" in modes:
        gain = [p - b for p, b in zip(aucs("pfd", "student"), aucs("baseline", "student"))]
        print(f"\nPFD student - baseline student, per seed: {', '.join(f'{g:+.4f}' for g in gain)}"
              f" (mean {statistics.mean(gain):+.4f})")
    if lambdas:
        print("\nTable 6 (PFD students' AUC by lambda)\n")
        print("| lambda | " + " | ".join(str(x) for x in lambdas) + " |")
        print("|---" * (len(lambdas) + 1) + "|")
        print("| PFD | " + " | ".join(_fmt(aucs("pfd", "student", lam)) for lam in lambdas) + " |")
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
