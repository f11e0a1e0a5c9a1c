"""Tables 2-4 of Zhu et al. 2020 (Ensembled CTR Prediction via KD) on the synthetic ensemble world.

    python benchmarks/ensemble_tables.py --out bench_out/ensemble [--seeds 0,1,2] [--tune-seed 100]
        [--rows 200000] [--rates 0.001,0.002,0.004] [--hint-weight 0.1] [--table2-teacher dcn_v2]
        [--set key=value ...]

Every run is an ordinary `pfd_tf.trainer.train` run on a world written by
`pfd-data --scenario ensemble` (one world per seed, trained with train.seed =
the seed).  Per world:

1. Teachers, each trained alone (`distill.teacher_only`) and scored by its
   own held-out AUC: LR, FM, DCN-v2, xDeepFM; and the DNN alone (the
   student trained without a teacher: every student row is compared with it).
2. Students, a DNN distilled with soft labels (Eq. (8)) from teachers
   restored frozen from step 1 (the pre-train scheme): from each single
   teacher, from the average of FM, DCN-v2 and xDeepFM (3T), and from their
   gated ensemble (3T gated, Eq. (11)).  The ensembles' own AUC is reported
   beside their students'.
3. Table 2, for one teacher (--table2-teacher, DCN-v2 by default: fixed
   before any run, and cheaper to co-train than xDeepFM): soft label vs hint (Eq. (9), distill.lambda 0 and
   distill.hint_weight --hint-weight, fixed a priori), pre-train vs co-train
   (both models trained in one step, each on its own tables as in the paper:
   model.sharing independent).

Learning rates: every row's rate is chosen from --rates on the validation
split of world --tune-seed (its last training day held out; its teachers
are world --tune-seed's, trained on the same split), never on an evaluation
world.  Output: OUT/ensemble.md and OUT/ensemble.json; a killed run started
again reads back finished runs.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import time

import common  # noqa: F401  (Keras 2 before TensorFlow)

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.compare.split import validation_split
from pfd_tf.compare.stats import paired_t_test
from pfd_tf.datasets.ensemble import generate_ensemble
from pfd_tf.trainer import train

TEACHERS = {  # sizes as the world's config.yaml has them
    "lr": "{name: lr, model: lr, features: regular}",
    "fm": "{name: fm, model: fm, features: regular}",
    "dcn_v2": "{name: dcn_v2, model: dcn_v2, features: regular, cross_layers: 2, cross_rank: 16}",
    "xdeepfm": "{name: xdeepfm, model: xdeepfm, features: regular, cin_layers: [64, 64]}",
}
ENSEMBLE = ("fm", "dcn_v2", "xdeepfm")


def _frozen(name: str, checkpoint: str) -> str:
    return TEACHERS[name][:-1] + f", checkpoint: {checkpoint}}}"


@dataclasses.dataclass
class Bench:
    out: str
    rates: list
    overrides: list
    world: dict
    hint_weight: float

    def world_config(self, seed: int) -> str:
        data_dir = os.path.join(self.out, f"data-{seed}")
        path = os.path.join(data_dir, "config.yaml")
        if not os.path.exists(path):  # written last: a present config means a whole world
            generate_ensemble(data_dir, seed=seed, **self.world)
        return path

    def run(self, seed: int, split: str, row: str, rate: float, overrides: list) -> dict:
        """One run (or its metrics read back); `split`: validation (rate choice) or test."""
        config = config_lib.load(self.world_config(seed), [*self.overrides, *overrides,
                                                           f"train.learning_rate={rate!r}", f"train.seed={seed}"])
        if split == "validation":
            config = validation_split(config)
        model_dir = os.path.abspath(os.path.join(self.out, "runs", f"{split}-{seed}", row, f"lr{rate:g}"))
        os.makedirs(model_dir, exist_ok=True)
        keras.backend.clear_session()
        started, captured = time.perf_counter(), io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                metrics = train(config, model_dir, verbose=0, export=split != "validation")
        finally:
            with open(os.path.join(model_dir, "train.log"), "a", encoding="utf-8") as f:
                f.write(captured.getvalue())
        metrics["model_dir"] = model_dir
        auc = score(metrics)
        print(f"{split} {seed}  {row}  lr {rate:g}: AUC {auc:.4f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
        return metrics

    def best(self, seed: int, row: str, overrides_of) -> tuple[float, dict]:
        """The rate of --rates with the best validation AUC for `row`, and that run's metrics."""
        runs = {rate: self.run(seed, "validation", row, rate, overrides_of("validation")) for rate in self.rates}
        rate = max(runs, key=lambda r: score(runs[r]))
        if len(self.rates) > 1 and rate in (min(self.rates), max(self.rates)):
            print(f"note: {row}'s best rate {rate:g} is the grid's edge", flush=True)
        return rate, runs[rate]


def score(metrics: dict) -> float:
    """The AUC a row is judged by: the student's, or (a teacher trained alone) its teacher's."""
    if metrics.get("student"):
        return metrics["student"]["auc"]
    (teacher,) = metrics["teachers"].values()
    return teacher["auc"]


def rows(teacher_dirs, hint_weight: float, table2: str):
    """Row name -> (overrides given the split's teacher run dirs): every row of the tables."""
    out = {f"teacher {name}": lambda split, n=name: [f"teachers=[{TEACHERS[n]}]", "distill.teacher_only=true"]
           for name in TEACHERS}
    out["DNN alone"] = lambda split: ["distill.mode=baseline"]
    for name in TEACHERS:
        out[f"{name} → DNN"] = lambda split, n=name: [f"teachers=[{_frozen(n, teacher_dirs[split][n])}]"]
    for ensemble in ("average", "gating"):
        label = "3T" if ensemble == "average" else "3T gated"
        out[f"{label} → DNN"] = lambda split, e=ensemble: [
            "teachers=[" + ", ".join(_frozen(n, teacher_dirs[split][n]) for n in ENSEMBLE) + "]",
            f"distill.ensemble={e}"]
    hint = ["distill.lambda=0", f"distill.hint_weight={hint_weight!r}"]
    # Co-trained as the paper's (Section 3.4.1): two models, each its own tables, in one step.
    cotrain = [f"teachers=[{TEACHERS[table2]}]", "model.sharing=independent"] if table2 else []
    if table2:
        out[f"{table2}: soft label + co-train"] = lambda split: cotrain
        out[f"{table2}: hint + pre-train"] = lambda split: [f"teachers=[{_frozen(table2, teacher_dirs[split][table2])}]",
                                                           *hint]
        out[f"{table2}: hint + co-train"] = lambda split: [*cotrain, *hint]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("bench_out", "ensemble"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tune-seed", type=int, default=100)
    parser.add_argument("--rows", type=int, default=200_000)
    # The world's config trains with Adam (pfd_tf.datasets.ensemble_config.OPTIMIZER); issue 12's tables were
    # Adagrad's: --set train.optimizer=adagrad --rates 0.4,1.6,3.2.
    parser.add_argument("--rates", default="0.001,0.002,0.004")
    parser.add_argument("--hint-weight", type=float, default=0.1)
    parser.add_argument("--table2-teacher", choices=sorted(TEACHERS), default="dcn_v2",
                        help="Table 2's one teacher (fixed before any run)")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.tune_seed in seeds:
        parser.error("--tune-seed is one of --seeds: rates must be chosen on another world")
    bench = Bench(args.out, [float(r) for r in args.rates.split(",")], args.set, {"rows": args.rows},
                  args.hint_weight)

    # 1. Teachers' rates on the validation world; their validation runs are the validation students' teachers.
    teacher_dirs = {"validation": {}}
    rate_of = {}
    for name in TEACHERS:
        row = f"teacher {name}"
        rate_of[row], metrics = bench.best(args.tune_seed, row, rows(teacher_dirs, 0, "")[row])
        teacher_dirs["validation"][name] = metrics["model_dir"]
    table2 = args.table2_teacher
    every = rows(teacher_dirs, args.hint_weight, table2)
    for row, overrides_of in every.items():
        if row not in rate_of:
            rate_of[row], _ = bench.best(args.tune_seed, row, overrides_of)

    # 2. Every row at its rate on each evaluation world; teachers first (the students restore them).
    results = {row: [] for row in every}
    for seed in seeds:
        split = f"test-{seed}"
        teacher_dirs[split] = {}
        for row, overrides_of in every.items():
            metrics = bench.run(seed, "test", row, rate_of[row], overrides_of(split))
            if row.startswith("teacher "):
                teacher_dirs[split][row[len("teacher "):]] = metrics["model_dir"]
            results[row].append(metrics)
    report = write_report(args, results, rate_of, table2)
    print(report)


def _fmt(values) -> str:
    return common.fmt(values)


def write_report(args, results, rate_of, table2) -> str:
    base = [m["student"]["auc"] for m in results["DNN alone"]]
    lines = [f"# Ensemble distillation on the synthetic ensemble world (worlds {args.seeds}, {args.rows} rows; "
             f"rates chosen on world {args.tune_seed})", "",
             "| row | lr | AUC | log loss | teacher/ensemble AUC | Δ AUC vs DNN alone (per seed) | p |",
             "|---|---|---|---|---|---|---|"]
    record = {}
    for row, runs in results.items():
        aucs = [score(m) for m in runs]
        losses = [m["student"]["logloss"] if m.get("student") else next(iter(m["teachers"].values()))["logloss"]
                  for m in runs]
        teacher = [m["ensemble"]["auc"] if m.get("ensemble") else None for m in runs]
        if all(t is None for t in teacher) and runs[0].get("student") and runs[0]["teachers"]:
            teacher = [next(iter(m["teachers"].values()))["auc"] for m in runs]
        shown_teacher = _fmt(teacher) if all(t is not None for t in teacher) else ""
        delta, p = "", ""
        if runs[0].get("student") and row != "DNN alone":
            diffs = [a - b for a, b in zip(aucs, base)]
            delta = ", ".join(f"{d:+.4f}" for d in diffs)
            test = paired_t_test(diffs)
            p = f"{test['p']:.2f}" if test["p"] is not None else ""
        lines.append(f"| {row} | {rate_of[row]:g} | {_fmt(aucs)} | {_fmt(losses)} | {shown_teacher} | {delta} | {p} |")
        record[row] = {"learning_rate": rate_of[row], "auc": aucs, "logloss": losses, "teacher_auc": teacher,
                       "gate_weights": [m.get("ensemble_weights") for m in runs]}
    lines += ["", f"Table 2's teacher: {table2}; hint weight {args.hint_weight:g}."]
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ensemble.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(args.out, "ensemble.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": record, "table2_teacher": table2, "args": vars(args)}, f, indent=2)
    return text


if __name__ == "__main__":
    sys.exit(main())
