"""pfd_tf's side of `benchmarks/peer_baseline.py`: its baseline student (or zoo model) trained on a world,
and the choice of its rate and length on the validation world.

`choose_pfd_tf` trains every point of the grid once on the validation world
and keeps the best held-out AUC whose second start (`train.seed` + 1, the
same world) does not diverge either.
"""
from __future__ import annotations

import math
import os

from common import run
from peer_tables import Done

from pfd_tf import config as config_lib
from pfd_tf.callbacks import NonFiniteLossError
from pfd_tf.config import Architecture


def rate_overrides(rate: str) -> list[str]:
    """`RATE` or `OPTIMIZER:RATE` of --rates as config overrides (none for the empty default)."""
    optimizer, _, value = rate.rpartition(":")
    return [f"train.optimizer={optimizer}"] * bool(optimizer) + [f"train.learning_rate={value}"] * bool(value)


def choose_pfd_tf(done: Done, prefix: str, tune_path: str, scenario: str, model: str, overrides, grid,
                  runs_dir: str, seed: int, tuning: list) -> list[str]:
    """The overrides of `grid` (rate, epochs) with the best held-out AUC on the validation world whose second
    start there does not diverge.

    Each point trains once (`train.seed` = `seed`); the best is then trained again from another start
    (`train.seed` = `seed` + 1, the same world) and kept only if that run finishes too; else the next
    best is confirmed so.  A rate at the edge of blowing up can finish on one start and diverge on the
    next (DeepFM at Adagrad 1.6 for 2 epochs: best on the validation world, blown up on every evaluation
    world, and on the validation world's second start): confirming the winner keeps such a point out at
    the cost of one run per model.
    """
    if len(grid) == 1:
        return grid[0]
    scores = []
    for point in grid:
        auc = _validation_auc(done, prefix, tune_path, scenario, model, overrides, point, runs_dir, seed, tuning)
        scores.append((auc if auc is not None else -1.0, point))
    ranked = sorted(scores, key=lambda s: -s[0])  # stable: ties keep the grid's order, as max() did
    for auc, point in ranked:
        if auc < 0:
            break
        if _validation_auc(done, prefix, tune_path, scenario, model, overrides, point, runs_dir, seed + 1,
                           tuning, second_start=True) is not None:
            return point
        print(f"{scenario} {model} {' '.join(point)}: best left, but its second start diverged; not chosen",
              flush=True)
    return ranked[0][1]  # every point diverged on one of its starts: the best first start, as before


def _validation_auc(done: Done, prefix: str, tune_path: str, scenario: str, model: str, overrides, point,
                    runs_dir: str, seed: int, tuning: list, second_start: bool = False) -> float | None:
    """One grid point's held-out AUC on the validation world from start `seed` (None: it diverged)."""
    name = "-".join(p.split("=")[1] for p in point) + ("-again" if second_start else "")  # e.g. adam-0.001-1

    def measure():
        try:
            return train_pfd_tf(tune_path, scenario, seed, list(overrides) + point,
                                os.path.join(runs_dir, f"{model}-{name}"), model)
        except NonFiniteLossError as err:  # a rate that diverges is a grid point that lost, not the end
            print(f"{scenario} {model} {' '.join(point)} (seed {seed}): diverged ({err})", flush=True)
            return [{"scenario": scenario, "seed": seed, "zoo": model, "side": "pfd_tf", "auc": None,
                     "diverged": True}]

    rows = done.get(f"{prefix}|{scenario}|{model}|pfd_tf|{seed}|{' '.join(point)}", measure)
    tuning += [{**row, "overrides": point, "second_start": second_start} for row in rows]
    auc = rows[0].get("auc")
    return auc if auc is not None and math.isfinite(auc) else None


def train_pfd_tf(config_path: str, scenario: str, seed: int, user_overrides, runs_dir: str,
                 model_kind: str = "dnn", scored_if_diverged: bool = False) -> list[dict]:
    """pfd_tf's baseline student with the world's config, and its MLP student when that is not already it
    (a zoo model's student, `student.model` among the overrides, is never two-tower).

    `scored_if_diverged` (the evaluation worlds): a run that blows up is a row with AUC 0.5 marked
    `diverged`; otherwise (the validation world's grid) the error goes to the caller."""
    overrides = ["distill.mode=baseline", f"train.seed={seed}"]
    variants = [overrides + list(user_overrides)]
    if model_kind == "dnn" and config_lib.load(config_path, variants[0]).model.architecture is not Architecture.MLP:
        variants.append(overrides + ["model.architecture=mlp"] + list(user_overrides))
    rows = []
    for variant in variants:
        architecture = config_lib.load(config_path, variant).model.architecture.value
        name = f"pfd_tf baseline student ({architecture})" if model_kind == "dnn" else f"pfd_tf {model_kind}"
        try:
            metrics = run(config_path, os.path.join(runs_dir, f"baseline-{architecture}-seed{seed}"), variant)
        except NonFiniteLossError as err:
            if not scored_if_diverged:
                raise
            # The point the validation world chose blew up on this world: a user would get exit 4 and no
            # model, i.e. the constant predictor (AUC 0.5).  Scored so, and marked, rather than ending the run.
            print(f"{scenario} seed {seed} {name}: diverged ({err})", flush=True)
            rows.append({"scenario": scenario, "seed": seed, "model": name, "zoo": model_kind, "side": "pfd_tf",
                         "architecture": architecture, "auc": 0.5, "logloss": None, "diverged": True})
            continue
        student = metrics["student"]
        rows.append({"scenario": scenario, "seed": seed, "model": name, "zoo": model_kind,
                     "side": "pfd_tf", "architecture": architecture, "epochs": metrics["epochs"],
                     "auc": student["auc"], "logloss": student["logloss"],
                     "train_seconds": metrics["train_seconds"], "train_rows": metrics["train_rows"],
                     "eval_rows": metrics["eval_rows"]["rows"]})
        print(f"{scenario} seed {seed} {rows[-1]['model']}: AUC {student['auc']:.4f}  "
              f"logloss {student['logloss']:.4f}  {metrics['train_seconds']:.1f}s", flush=True)
    return rows
