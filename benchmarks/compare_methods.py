"""Every distillation method on a synthetic world: the shape of the PFD paper's result tables.

    python benchmarks/compare_methods.py --scenario cvr --out bench_out/table4      # Tables 4 and 6
    python benchmarks/compare_methods.py --scenario ctr --out bench_out/table2 --lambdas ""   # Table 2
        [--seeds 0,1,2] [--rows 200000] [--modes baseline,lupi,md,pfd,pfd_md]
        [--lambdas 0.1,0.3,0.5,0.7,0.9] [--set key=value ...]
        [--tune-rates 0.8,1.6,3.2,6.4,12.8 --tune-seed 100 | --rates baseline=12.8,pfd=3.2]
        [--world FIELD=VALUE ...]

For each seed it generates the world (`pfd-data --scenario S --seed N`) and
trains every mode on it, then a lambda sweep of PFD; it prints markdown tables
of held-out student and teacher AUC (mean and standard deviation over seeds),
each method's student gain over the baseline per seed, and writes every run's
metrics to `OUT/results.json`.  The CVR world's MLP student is the paper's
fine-grained CVR ranker (Table 4); the CTR world's two-tower student is its
coarse-grained CTR ranker (Table 2).  `--world FIELD=VALUE` changes a field
of the world dataclass for every world (as `pfd-data --world` does).

With `--tune-rates`, every method first gets its own learning rate: each mode
is trained at each rate on a separate *validation* world (`--tune-seed`, not
one of `--seeds`), the rate with the best held-out student AUC there is kept,
and the evaluation worlds are trained at it (the lambda sweep at PFD's rate).
Why: under Adagrad the best rate depends on the loss (soft labels are far
less noisy than clicks), so one rate for every method favours the method it
was tuned for; and a baseline under-trained at a low rate makes any
co-trained teacher look useful.  Tuning on another world keeps the evaluation
days out of the choice.  `--rates MODE=RATE,...` reuses rates chosen before.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from common import add_world_argument, fmt, parse_world, run

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
    add_world_argument(parser)
    parser.add_argument("--tune-rates", default="", help="learning rates to choose from per method; empty: the config's")
    parser.add_argument("--rates", default="", help="MODE=RATE,...: fixed per-method learning rates")
    parser.add_argument("--tune-seed", type=int, default=100, help="the validation world's seed for --tune-rates")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    lambdas = [float(x) for x in args.lambdas.split(",") if x]
    tune_rates = [float(x) for x in args.tune_rates.split(",") if x]
    if tune_rates and args.tune_seed in seeds:
        parser.error(f"--tune-seed {args.tune_seed} is one of --seeds: rates must be chosen on another world")
    rate_of, tuning = fixed_rates(parser, args.rates), []
    if tune_rates and rate_of:
        parser.error("give --tune-rates or --rates, not both")
    sized = {"rows": args.rows} if args.rows else {}
    sized.update(parse_world(parser, args.scenario, args.world))
    args.out = args.out or os.path.join("bench_out", f"{args.scenario}_methods")
    os.makedirs(args.out, exist_ok=True)
    results = []
    started = time.perf_counter()
    if tune_rates:
        tune_modes = modes + (["pfd"] if lambdas and "pfd" not in modes else [])
        rate_of, tuning = tune(args, tune_modes, tune_rates, sized)
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
            if mode in rate_of:
                overrides.append(f"train.learning_rate={rate_of[mode]}")
            if lam is not None:
                overrides.append(f"distill.lambda={lam}")
            metrics = run(config_path, os.path.join(args.out, "runs", name), overrides)
            row = {"mode": mode, "seed": seed, "lambda": lam, "learning_rate": rate_of.get(mode),
                   **{k: metrics[k] for k in ("student", "teacher", "train_seconds")}}
            results.append(row)
            teacher = metrics["teacher"]["auc"] if metrics["teacher"] else float("nan")
            print(f"{name}: student AUC {metrics['student']['auc']:.4f}  teacher AUC {teacher:.4f}  "
                  f"{metrics['train_seconds']:.1f}s", flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "rates": rate_of, "tuning": tuning, "results": results}, f, indent=2)

    def aucs(mode, who, lam=None):
        return [r[who]["auc"] for r in results if r["mode"] == mode and r["lambda"] == lam and r[who]]

    table = {"cvr": "Table 4 (synthetic CVR", "ctr": "Table 2 (synthetic CTR, two-tower student"}[args.scenario]
    world = "".join(f", {w}" for w in args.world)
    print(f"\n{table}, {args.rows or 'default'} rows{world}, seeds {args.seeds}): held-out AUC, mean ± std\n")
    print("| method | rate | student | teacher |\n|---|---|---|---|")
    for mode in modes:
        rate = rate_of.get(mode, "config")
        print(f"| {mode} | {rate} | {fmt(aucs(mode, 'student'))} | {fmt(aucs(mode, 'teacher'))} |")
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


def fixed_rates(parser, text: str) -> dict[str, float]:
    """`baseline=12.8,pfd=3.2` -> {"baseline": 12.8, "pfd": 3.2}."""
    rates = {}
    for item in (i for i in text.split(",") if i):
        mode, _, rate = item.partition("=")
        try:
            rates[mode.strip()] = float(rate)  # no "=": float("") fails too
        except ValueError:
            parser.error(f"--rates {item!r}: expected MODE=RATE")
    return rates


def tune(args, modes, rates, sized):
    """Trains every mode at every rate on the validation world; returns ({mode: best rate}, rows)."""
    config_path = SCENARIOS[args.scenario](os.path.join(args.out, f"data-tune{args.tune_seed}"),
                                           seed=args.tune_seed, **sized)
    rows = []
    for mode in modes:
        for rate in rates:
            name = f"tune-{mode}-lr{rate}"
            overrides = [f"distill.mode={mode}", f"train.seed={args.tune_seed}", *args.set,
                         f"train.learning_rate={rate}"]
            metrics = run(config_path, os.path.join(args.out, "runs", name), overrides)
            rows.append({"mode": mode, "learning_rate": rate, "student": metrics["student"],
                         "teacher": metrics["teacher"]})
            print(f"{name}: student AUC {metrics['student']['auc']:.4f}", flush=True)
    best = {m: max((r for r in rows if r["mode"] == m), key=lambda r: r["student"]["auc"])["learning_rate"]
            for m in modes}
    print(f"\nStudent AUC on the validation world (seed {args.tune_seed}) by learning rate\n")
    print("| method | " + " | ".join(str(r) for r in rates) + " | chosen |")
    print("|---" * (len(rates) + 2) + "|")
    for m in modes:
        cells = [f"{r['student']['auc']:.4f}" for r in rows if r["mode"] == m]
        print(f"| {m} | " + " | ".join(cells) + f" | {best[m]} |")
    print(flush=True)
    return best, rows


if __name__ == "__main__":
    main()
