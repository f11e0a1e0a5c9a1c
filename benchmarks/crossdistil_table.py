"""A table like Table 2 of CrossDistil on the two-task world: per-task AUC and Multi-AUC of each method.

Methods (all a DNN student; "Cross-Task Knowledge Distillation in Multi-Task
Recommendation", Section 4.3):
  single       one network per task (Single-Model)
  mtl          one network, a head per task over the shared body (hard sharing, Shared-Bottom-like)
  taug         mtl + the augmented tasks like+, buy+ (Eq. (4)), no distillation (alpha = 0)
  crossdistil  taug + calibrated, error-corrected distillation (`distill.crossdistil`, its defaults)
  naive        mtl + a co-trained teacher (`distill.mode: md`) whose buy logit teaches the student's like
               and whose like logit its buy (soft-label terms with source_task / target_task, weight 0.5):
               cross-task KD, a row of Table 4
  same_task    the same teacher, each task taught by the teacher's same task: same-task KD (Table 4)
  shared_bottom, mmoe, ple   the multi-task backbones, a tower per task (no distillation)
  taug_ple, crossdistil_ple  TAUG and CrossDistil on PLE (calibration rate 0.1, the multitask world's config)
  no_ranking_ple, no_calibration_ple, no_correction_ple   Table 4's ablations of crossdistil_ple

Rates: each of `--rate-methods` picks its Adagrad rate among `--rates` by the mean of its two tasks'
held-out AUCs on the validation world (`--validation-seed`, 100); single and taug take mtl's and
crossdistil's rate.  Then `--seeds` (0 1 2) are trained at those rates.  Multi-AUC is Eq. (12)
(`pfd_tf.metrics_multiclass.multi_auc`) of each task's student score on the test day.

    nice -n 10 python benchmarks/crossdistil_table.py --out /work/scratch/crossdistil/table --rows 50000
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run  # noqa: E402

from pfd_tf import config as config_lib  # noqa: E402
from pfd_tf.data.pipeline import make_dataset_fn  # noqa: E402
from pfd_tf.datasets.crossdistil_config import write_crossdistil_world  # noqa: E402
from pfd_tf.datasets.multitask import BUY, LIKE  # noqa: E402
from pfd_tf.divergence import DivergedError  # noqa: E402
from pfd_tf.export import restore_student  # noqa: E402
from pfd_tf.metrics import exact_auc  # noqa: E402
from pfd_tf.metrics_multiclass import TASK_A, TASK_B, multi_auc  # noqa: E402

OFF = "distill.crossdistil=null"
METHODS = {
    "single": None,  # two runs, below
    "mtl": [OFF],
    "taug": ["distill.crossdistil.alpha=0"],
    "crossdistil": [],
    "naive": [OFF, "distill.mode=md", "distill.terms=[{kind: soft_label, weight: 0.5, source_task: buy, "
              "target_task: like}, {kind: soft_label, weight: 0.5, source_task: like, target_task: buy}]"],
    "same_task": [OFF, "distill.mode=md", "distill.terms=[{kind: soft_label, weight: 0.5, source_task: like, "
                  "target_task: like}, {kind: soft_label, weight: 0.5, source_task: buy, target_task: buy}]"],
}
# The multi-task backbones, each a tower of 64 per task (the multitask world's config.yaml: PLE of two levels,
# one task and one shared expert a level, 128 wide).
BACKBONES = {
    "shared_bottom": ["student.model=shared_bottom", "student.expert_units=[128]", "student.tower=[64]"],
    "mmoe": ["student.model=mmoe", "student.experts=4", "student.expert_units=[128]", "student.tower=[64]"],
    "ple": ["student.model=ple", "student.levels=2", "student.experts=1", "student.shared_experts=1",
            "student.expert_units=[128]", "student.tower=[64]"],
}
METHODS.update({name: [OFF, *sets] for name, sets in BACKBONES.items()})
# TAUG and CrossDistil on PLE (the paper's backbone), and Table 4's ablations of CrossDistil on PLE.
PLE = BACKBONES["ple"]
METHODS.update({
    "taug_ple": [*PLE, "distill.crossdistil.alpha=0"],
    "crossdistil_ple": [*PLE, "distill.crossdistil.calibration_learning_rate=0.1"],
    "no_ranking_ple": [*PLE, "distill.crossdistil.calibration_learning_rate=0.1",
                       "distill.crossdistil.ranking_weight=0"],
    "no_calibration_ple": [*PLE, "distill.crossdistil.calibrate=false"],
    "no_correction_ple": [*PLE, "distill.crossdistil.calibration_learning_rate=0.1",
                          "distill.crossdistil.correct=false"],
})
RATE_FROM = {"single": "mtl", "mtl": "mtl", "taug": "crossdistil", "crossdistil": "crossdistil", "naive": "mtl",
             "same_task": "mtl", "shared_bottom": "shared_bottom", "mmoe": "mmoe", "ple": "ple",
             "taug_ple": "crossdistil_ple", "crossdistil_ple": "crossdistil_ple", "no_ranking_ple": "crossdistil_ple",
             "no_calibration_ple": "crossdistil_ple", "no_correction_ple": "crossdistil_ple"}


def scores(model_dir: str, checkpoint: str) -> tuple[dict, dict]:
    """The trained student's logits by task and the labels on the test day."""
    config = config_lib.load(os.path.join(model_dir, "config.yaml"))
    student = restore_student(config, checkpoint)
    out, labels = {}, {}
    for ids, y in make_dataset_fn(config, "eval", 8192, training=False)(None):
        output = student.forward(ids, training=False)
        by_task = output.by_task or {config.task_specs[0].name: output.logits}
        for name, value in by_task.items():
            out.setdefault(name, []).append(value.numpy())
        for name, value in y.items():
            labels.setdefault(name, []).append(value.numpy())
    return ({k: np.concatenate(v) for k, v in out.items()}, {k: np.concatenate(v) for k, v in labels.items()})


def train_method(world: str, method: str, rate: float, work: str) -> dict:
    """{like, buy, multi_like, multi_buy} for one method at one rate on one world."""
    path = os.path.join(world, "config.yaml")
    rate_set = [f"train.learning_rate={rate}"]
    if method == "single":
        logits, y = {}, None
        for task in (LIKE, BUY):
            model_dir = os.path.join(work, f"single_{task}")
            metrics = run(path, model_dir, [OFF, f"tasks=[{{name: {task}, label: {task}}}]"] + rate_set)
            task_logits, _ = scores(model_dir, metrics["checkpoint"])
            logits[task] = task_logits[task]
        config = config_lib.load(path, [OFF])
        y = {}
        for _, labels in make_dataset_fn(config, "eval", 8192, training=False)(None):
            for name, value in labels.items():
                y.setdefault(name, []).append(value.numpy())
        y = {k: np.concatenate(v) for k, v in y.items()}
    else:
        model_dir = os.path.join(work, method)
        metrics = run(path, model_dir, METHODS[method] + rate_set)
        logits, y = scores(model_dir, metrics["checkpoint"])
    return {LIKE: exact_auc(y[LIKE], logits[LIKE]), BUY: exact_auc(y[BUY], logits[BUY]),
            f"multi_{LIKE}": multi_auc(y[LIKE], y[BUY], logits[LIKE], TASK_A),
            f"multi_{BUY}": multi_auc(y[LIKE], y[BUY], logits[BUY], TASK_B)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--validation-seed", type=int, default=100)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.4, 1.6])
    parser.add_argument("--rate-methods", nargs="+", default=["mtl", "crossdistil"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--chosen", nargs="*", default=[], metavar="METHOD=RATE",
                        help="rates already chosen on the validation world (skips choosing them again)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "runs.jsonl"), "a")

    def world(seed):
        directory = os.path.join(args.out, f"world{seed}")
        if not os.path.exists(os.path.join(directory, "config.yaml")):
            write_crossdistil_world(directory, rows=args.rows, seed=seed)
        return directory

    chosen = {item.split("=")[0]: float(item.split("=")[1]) for item in args.chosen}
    for method in [m for m in args.rate_methods if m not in chosen]:
        by_rate = {}
        for rate in args.rates:
            try:
                result = train_method(world(args.validation_seed), method, rate, os.path.join(args.out, "work"))
            except DivergedError as err:  # a rate too high for the method: not a candidate
                log.write(json.dumps({"seed": args.validation_seed, "method": method, "rate": rate,
                                      "diverged": str(err)[:200]}) + "\n")
                continue
            by_rate[rate] = (result[LIKE] + result[BUY]) / 2
            log.write(json.dumps({"seed": args.validation_seed, "method": method, "rate": rate, **result}) + "\n")
            log.flush()
        chosen[method] = max(by_rate, key=by_rate.get)
        print(f"rate {method}: {chosen[method]} ({by_rate})", flush=True)
    table = {}
    for seed in args.seeds:
        for method in args.methods:
            rate = chosen[RATE_FROM[method]]
            result = train_method(world(seed), method, rate, os.path.join(args.out, "work"))
            log.write(json.dumps({"seed": seed, "method": method, "rate": rate, **result}) + "\n")
            log.flush()
            for key, value in result.items():
                table.setdefault(method, {}).setdefault(key, []).append(value)
    keys = (LIKE, f"multi_{LIKE}", BUY, f"multi_{BUY}")
    print("| method | rate | " + " | ".join(f"{k} AUC" if "multi" not in k else k.replace("multi_", "Multi-AUC ")
                                          for k in keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for method, values in table.items():
        cells = [f"{statistics.mean(values[k]):.4f} ± {statistics.stdev(values[k]) if len(values[k]) > 1 else 0:.4f}"
                 for k in keys]
        print(f"| {method} | {chosen[RATE_FROM[method]]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
