"""Every distillation method on a synthetic world: the shape of the PFD paper's result tables.

    python benchmarks/compare_methods.py --scenario cvr --out bench_out/table4      # Tables 4 and 6
    python benchmarks/compare_methods.py --scenario ctr --out bench_out/table2 --lambdas ""   # Table 2
        [--seeds 0,1,2] [--rows 200000] [--modes baseline,lupi,md,pfd,pfd_md]
        [--lambdas 0.1,0.3,0.5,0.7,0.9] [--set key=value ...]

For each seed it generates the world (`pfd-data --scenario S --seed N`) and
trains every mode on it, then a lambda sweep of PFD; it prints markdown tables
of held-out student and teacher AUC (mean and standard deviation over seeds),
each method's student gain over the baseline per seed, and writes every run's
metrics to `OUT/results.json`.  The CVR world's MLP student is the paper's
fine-grained CVR ranker (Table 4); the CTR world's two-tower student is its
coarse-grained CTR ranker (Table 2).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from common import fmt, run

from pfd_tf import config as config_lib
from pfd_tf.data.scenarios import SCENARIOS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="cvr")
    parser.add_argument("--out", default=None, help="default: bench_out/<scenario>_methods")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--modes", default="baseline,lupi,md,pfd,pfd_md")
    parser.add_argument("--lambdas", default="0.1,0.3,0.5,0.7,0.9", help="PFD lambda sweep; empty to skip")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    lambdas = [float(x) for x in args.lambdas.split(",") if x]
    args.out = args.out or os.path.join("bench_out", f"{args.scenario}_methods")
    os.makedirs(args.out, exist_ok=True)
    sized = {"rows": args.rows} if args.rows else {}
    results = []
    started = time.perf_counter()
    for seed in seeds:
        config_path = SCENARIOS[args.scenario](os.path.join(args.out, f"data-{seed}"), seed=seed, **sized)
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
            metrics = run(config_path, os.path.join(args.out, "runs", name), overrides)
            row = {"mode": mode, "seed": seed, "lambda": lam, **{k: metrics[k] for k in ("student", "teacher", "train_seconds")}}
            results.append(row)
            teacher = metrics["teacher"]["auc"] if metrics["teacher"] else float("nan")
            print(f"{name}: student AUC {metrics['student']['auc']:.4f}  teacher AUC {teacher:.4f}  "
                  f"{metrics['train_seconds']:.1f}s", flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=2)

    def aucs(mode, who, lam=None):
        return [r[who]["auc"] for r in results if r["mode"] == mode and r["lambda"] == lam and r[who]]

    table = {"cvr": "Table 4 (synthetic CVR", "ctr": "Table 2 (synthetic CTR, two-tower student"}[args.scenario]
    print(f"\n{table}, {args.rows or 'default'} rows, seeds {args.seeds}): held-out AUC, mean ± std\n")
    print("| method | student | teacher |\n|---|---|---|")
    for mode in modes:
        print(f"| {mode} | {fmt(aucs(mode, 'student'))} | {fmt(aucs(mode, 'teacher'))} |")
    if "baseline" in modes:
        print()
        for mode in (m for m in modes if m != "baseline"):
            gain = [s - b for s, b in zip(aucs(mode, "student"), aucs("baseline", "student"))]
            print(f"{mode} student - baseline student, per seed: {', '.join(f'{g:+.4f}' for g in gain)}"
                  f" (mean {statistics.mean(gain):+.4f})")
    if lambdas:
        print("\nTable 6 (PFD students' AUC by lambda)\n")
        print("| lambda | " + " | ".join(str(x) for x in lambdas) + " |")
        print("|---" * (len(lambdas) + 1) + "|")
        print("| PFD | " + " | ".join(fmt(aucs("pfd", "student", lam)) for lam in lambdas) + " |")
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
