"""The PFD paper's MTL baseline (Section 5.3) against PFD on the synthetic CVR world: the served student's AUC.

    python benchmarks/mtl_vs_pfd.py --rows 50000 --rates 0.4,1.6 --out /tmp/mtl_vs_pfd

Each method is a config the CVR world writes: `config.yaml` (PFD: the
teacher reads the privileged post-click features, Eq. (5) of the PFD paper)
and `config_mtl.yaml` (the MTL baseline: the privileged features are
auxiliary targets, `pfd_tf.datasets.mtl_baseline_config`); `baseline` is
`config.yaml` with `distill.mode: baseline` (the student on the labels alone).  Each method's
Adagrad rate is chosen among `--rates` on the validation world (seed 100)
by its student's held-out AUC (one rate given: used as it is, no
validation run), then trained on worlds 0, 1 and 2 (no export); the table
gives the mean ± std of the student's held-out AUC (the purchase task) and
each run's numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

from common import fmt

from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.datasets.cvr import generate_cvr
from pfd_tf.datasets.mtl_baseline_config import MTL_CONFIG
from pfd_tf.trainer import train

# method -> (config file, overrides): the student alone on the labels, PFD, the MTL baseline
METHODS = {"baseline": ("config.yaml", ["distill.mode=baseline"]), "pfd": ("config.yaml", []), "mtl": (MTL_CONFIG, [])}
VALIDATION, SEEDS = 100, (0, 1, 2)


def student_auc(out: str, rows: int, seed: int, method: str, rate: float) -> float:
    world = os.path.join(out, f"world_{seed}")
    if not os.path.exists(os.path.join(world, "config.yaml")):
        generate_cvr(world, rows=rows, seed=seed)
    model_dir = os.path.join(world, "runs", f"{method}_{rate}")
    shutil.rmtree(model_dir, ignore_errors=True)  # `train` would resume from a leftover run
    keras.backend.clear_session()
    path, overrides = METHODS[method]
    config = config_lib.load(os.path.join(world, path), [*overrides, f"train.learning_rate={rate}"])
    metrics = train(config, model_dir, verbose=0, export=False)
    auc = metrics["student"]["auc"]
    print(json.dumps({"world": seed, "method": method, "rate": rate, "student_auc": auc}), flush=True)
    return auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rates", default="0.4,1.6")
    parser.add_argument("--out", required=True)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, of: " + ", ".join(METHODS))
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    table = {}
    for method in args.methods.split(","):
        chosen = rates[0] if len(rates) == 1 else max(
            rates, key=lambda rate: student_auc(args.out, args.rows, VALIDATION, method, rate))
        table[method] = (chosen, [student_auc(args.out, args.rows, seed, method, chosen) for seed in SEEDS])
    print("| method | rate | student AUC, worlds 0-2 | per world |")
    print("|---|---|---|---|")
    for method, (rate, aucs) in table.items():
        print(f"| {method} | {rate:g} | {fmt(aucs)} | {', '.join(f'{a:.4f}' for a in aucs)} |")


if __name__ == "__main__":
    main()
