"""Ranking distillation into a two-tower retrieval student on the CTR world: point-, pair-, list-wise, none.

"Knowledge Distillation Techniques for Recommendation Systems" (the survey
of distillation across recall, pre-ranking and ranking) distils the
ranking teacher's order of each candidate list into the earlier stages by
a point-wise (the teacher's top K as positives), pair-wise (BPR over the
pairs the teacher orders) or list-wise (softmax cross entropy over the
list) objective.  Here: the CTR world (`pfd-data --scenario ctr`), its
two-tower student and its co-trained teacher (mode pfd: the teacher sees
the privileged user-item features), lists = a user's impressions of one day
(`data.group_by: [user_id, day]`), and four runs per world: no
distillation (a soft label of weight 0), and each ranking term alone
(weight WEIGHT, not mixing: added to the whole label loss).

Scored on the held-out day, per list of more than K impressions: recall@K
of the teacher's top K (the share of the teacher's top K that the
student's top K holds), and the student's AUC (metrics.json).  The learning
rate is chosen on world 100 (the no-distillation run's held-out AUC) among
RATES and used on worlds 0, 1, 2.

    python benchmarks/ranking_distill.py --out /tmp/ranking_distill [--rows 30000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 2
WEIGHT = 0.5
RATES = (0.1, 0.4)
VARIANTS = {
    "none": [{"kind": "soft_label", "weight": 0.0}],
    "pointwise_top_k": [{"kind": "pointwise_top_k", "weight": WEIGHT, "k": K}],
    "pairwise_bpr": [{"kind": "pairwise_bpr", "weight": WEIGHT}],
    "listwise_softmax": [{"kind": "listwise_softmax", "weight": WEIGHT, "temperature": 1.0}],
}
SETS = ["data.group_by=[user_id, day]", "model.user_tower=[64, 32]", "model.item_tower=[64, 32]",
        "model.teacher_tower=[128, 64]", "model.student_tower=[64, 32]", "model.big_teacher_tower=[128, 64]",
        "train.batch_size=256", "train.epochs=2", "train.warmup_fraction=0.1"]


def world(out: str, seed: int, rows: int) -> str:
    directory = os.path.abspath(os.path.join(out, f"world{seed}"))
    if not os.path.exists(os.path.join(directory, "config.yaml")):
        _run([sys.executable, "-m", "pfd_tf.cli.data", "--scenario", "ctr", "--out", directory, "--rows", str(rows),
              "--seed", str(seed)])
    return os.path.join(directory, "config.yaml")


def train(config: str, model_dir: str, variant: str, rate: float) -> None:
    if os.path.exists(os.path.join(model_dir, "metrics.json")):
        return
    terms = json.dumps(VARIANTS[variant])
    sets = SETS + [f"train.learning_rate={rate}", f"distill={{mode: pfd, terms: {terms}}}"]
    command = [sys.executable, "-m", "pfd_tf.cli.train", "--config", os.path.abspath(config), "--model_dir",
               os.path.abspath(model_dir)]
    for item in sets:
        command += ["--set", item]
    _run(command)


def _run(command) -> None:
    proc = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)}\n{proc.stderr[-3000:]}")


def recall_at_k(model_dir: str, k: int = K) -> tuple[float, int]:
    """Mean over the held-out lists longer than k of |teacher's top k & student's top k| / k; and their count."""
    import pfd_tf  # noqa: F401
    from pfd_tf import config as config_lib
    from pfd_tf._keras import tf
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.names import GROUP
    from pfd_tf.trainer import build_and_compile

    config = config_lib.load(os.path.join(model_dir, "config.yaml"))
    model = build_and_compile(config, tf.distribute.get_strategy())
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))) \
        .expect_partial()
    recalls = []
    for ids, labels in make_dataset_fn(config, "eval", 1024, training=False)(None):
        out = model.compute_losses(ids, labels, training=False)
        teacher, student, group = out["teacher_logits"].numpy(), out["student_logits"].numpy(), labels[GROUP].numpy()
        for g in np.unique(group):
            t, s = teacher[group == g], student[group == g]
            if len(t) > k:
                recalls.append(len(set(np.argsort(-t)[:k]) & set(np.argsort(-s)[:k])) / k)
    return float(np.mean(recalls)), len(recalls)


def score(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    recall, lists = recall_at_k(model_dir)
    return {"auc": metrics["student"]["auc"], "teacher_auc": metrics["teacher"]["auc"], f"recall@{K}": recall,
            "lists": lists}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--rows", type=int, default=30000)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    results: dict = {"validation": {}, "worlds": {}}
    validation = world(args.out, 100, args.rows)
    for rate in RATES:
        model_dir = os.path.join(args.out, f"w100_none_lr{rate}")
        train(validation, model_dir, "none", rate)
        results["validation"][str(rate)] = score(model_dir)
        print("world 100", rate, results["validation"][str(rate)], flush=True)
    rate = max(RATES, key=lambda r: results["validation"][str(r)]["auc"])
    results["rate"] = rate
    for seed in (0, 1, 2):
        config = world(args.out, seed, args.rows)
        for variant in VARIANTS:
            model_dir = os.path.join(args.out, f"w{seed}_{variant}")
            train(config, model_dir, variant, rate)
            results["worlds"].setdefault(variant, {})[str(seed)] = score(model_dir)
            print("world", seed, variant, results["worlds"][variant][str(seed)], flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"| student distilled by | held-out AUC | recall@{K} of the teacher's top {K} | teacher AUC |")
    print("| --- | --- | --- | --- |")
    for variant, by_seed in results["worlds"].items():
        cells = [np.mean([r[key] for r in by_seed.values()]) for key in ("auc", f"recall@{K}", "teacher_auc")]
        spread = [np.std([r[key] for r in by_seed.values()]) for key in ("auc", f"recall@{K}")]
        print(f"| {variant} | {cells[0]:.4f} ± {spread[0]:.4f} | {cells[1]:.3f} ± {spread[1]:.3f} | {cells[2]:.4f} |")


if __name__ == "__main__":
    main()
