"""Table 7 of the PFD paper: PFD+MD trained in different manners, on the synthetic CTR world.

    python benchmarks/training_manners.py --out bench_out/table7 [--seeds 0] [--rows 600000]
        [--repeats 3] [--mode pfd_md] [--rate R] [--baseline-rate R] [--world FIELD=VALUE ...]
        [--set key=value ...]

On one world per seed (`pfd-data --scenario ctr --seed N`), in one run:

| row         | how                                                                    |
|-------------|------------------------------------------------------------------------|
| baseline    | the two-tower student alone                                            |
| Ind&Async   | the teacher pre-trained alone (`distill.teacher_only`), then frozen     |
|             | while the student distils from it (`distill.teacher_checkpoint`)       |
| Ind&Sync    | teacher and student together, each with its own input components       |
| Share&Sync  | together, sharing every common input component (tables, encoder)       |
| Share*&Sync | together, sharing all but the user id (`student_private_features`)     |

`--rate` and `--baseline-rate` train the distilled rows and the baseline at
their own learning rates (as chosen by `compare_methods.py --tune-rates`):
under Adagrad the best rate depends on the loss.

Wall time is `metrics.json`'s `train_seconds` (for Ind&Async, both stages).
With `--repeats N` every row is trained N times, in N rounds of all rows one
after another, so that a slow spell of the machine hits every row alike; a
row's cost is the median over rounds of its time divided by the same round's
baseline time (with the smallest and largest ratio beside it).  Prints a
markdown table (AUC: mean over seeds and rounds) and writes every run's
metrics to `OUT/results.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from common import add_world_argument, fmt, parse_world, run

from pfd_tf.datasets.ctr import generate_ctr
from pfd_tf.datasets.ctr_world import DEFAULT_ROWS

INDEPENDENT = ["model.sharing=independent", "model.student_private_features=[]"]
MANNERS = {
    "Ind&Sync": INDEPENDENT,
    "Share&Sync": ["model.sharing=shared", "model.student_private_features=[]"],
    "Share*&Sync": ["model.sharing=shared", "model.student_private_features=[user_id]"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench_out/table7")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every row, for the wall-time ratios")
    parser.add_argument("--mode", default="pfd_md", help="the distillation method trained in each manner")
    parser.add_argument("--rate", type=float, default=None, help="learning rate of the distilled rows (default: the config's)")
    parser.add_argument("--baseline-rate", type=float, default=None, help="learning rate of the baseline (default: the config's)")
    add_world_argument(parser)
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args()
    world = parse_world(parser, "ctr", args.world)

    seeds = [int(s) for s in args.seeds.split(",")]
    os.makedirs(args.out, exist_ok=True)
    results = []
    started = time.perf_counter()

    def record(row, seed, round_, metrics, seconds):
        teacher = metrics["teacher"]["auc"] if metrics["teacher"] else None
        results.append({"row": row, "seed": seed, "round": round_, "student_auc": metrics["student"]["auc"],
                        "teacher_auc": teacher, "train_seconds": seconds})
        print(f"seed {seed} round {round_} {row}: student AUC {metrics['student']['auc']:.4f}  teacher AUC "
              f"{teacher if teacher is None else round(teacher, 4)}  {seconds:.1f}s", flush=True)

    configs = {seed: generate_ctr(os.path.join(args.out, f"data-{seed}"), rows=args.rows, seed=seed, **world)
               for seed in seeds}
    rounds = [(seed, round_) for seed in seeds for round_ in range(args.repeats)]
    for seed, round_ in rounds:
        config_path = configs[seed]
        runs = os.path.join(args.out, "runs", f"seed{seed}")
        common = [f"train.seed={seed}", *args.set]

        baseline = run(config_path, os.path.join(runs, "baseline"),
                       ["distill.mode=baseline", *common, *rate_override(args.baseline_rate)])
        record("baseline", seed, round_, baseline, baseline["train_seconds"])

        distill = [f"distill.mode={args.mode}", *common, *rate_override(args.rate)]
        teacher = run(config_path, os.path.join(runs, "ind_async_teacher"),
                      [*distill, *INDEPENDENT, "distill.teacher_only=true"])
        student = run(config_path, os.path.join(runs, "ind_async_student"),
                      [*distill, *INDEPENDENT, f"distill.teacher_checkpoint={os.path.abspath(teacher['checkpoint'])}"])
        record("Ind&Async", seed, round_, student, teacher["train_seconds"] + student["train_seconds"])

        for row, overrides in MANNERS.items():
            name = row.replace("&", "_").replace("*", "_star").lower()
            metrics = run(config_path, os.path.join(runs, name), [*distill, *overrides])
            record(row, seed, round_, metrics, metrics["train_seconds"])

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=2)

    def column(row, key):
        return [r[key] for r in results if r["row"] == row and r[key] is not None]

    def seconds(row, seed, round_):
        return next(r["train_seconds"] for r in results if (r["row"], r["seed"], r["round"]) == (row, seed, round_))

    where = "".join(f", {w}" for w in args.world)
    print(f"\nTable 7 ({args.mode} on the synthetic CTR world, {args.rows} rows{where}, seeds {args.seeds}, "
          f"{args.repeats} round(s))\n")
    print("| manner | student AUC | teacher AUC | median wall time | relative to baseline (min, max) |")
    print("|---|---|---|---|---|")
    for row in ["baseline", "Ind&Async", *MANNERS]:
        ratios = sorted(seconds(row, *key) / seconds("baseline", *key) - 1 for key in rounds)
        print(f"| {row} | {fmt(column(row, 'student_auc'))} | {fmt(column(row, 'teacher_auc'))} | "
              f"{statistics.median(column(row, 'train_seconds')):.0f} s | "
              f"{statistics.median(ratios) * 100:+.0f}% ({ratios[0] * 100:+.0f}%, {ratios[-1] * 100:+.0f}%) |")
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")


def rate_override(rate: float | None) -> list[str]:
    return [] if rate is None else [f"train.learning_rate={rate}"]


if __name__ == "__main__":
    main()
