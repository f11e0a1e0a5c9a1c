"""One teacher with three students in one run against three separate distillations of the same teacher.

    python benchmarks/cascade_vs_separate.py [--rows 20000] [--seeds 0,1,2] [--set key=value ...]

"Ranking distillation across the cascade" trains one teacher with a
retrieval, a pre-ranking and a ranking student together.  On the synthetic
CTR world of each seed, this trains `configs/cascade_ctr.yaml` (a DNN teacher
over every feature; the served DNN ranker `student`, a small DNN `prerank`
and a two-tower `recall`, each with its soft label) once, then each of its
three students alone with the same teacher config (the same rates, steps and
seed: the teacher is co-trained again in each), side by side in this
process.  Both with `pfd_tf.small_data`'s recipe (batches of 256, two
epochs), as the shipped-config test trains.  Prints each student's held-out
AUC in both settings and the wall time of the one run against the sum of the
three (training and evaluation, no export).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import pfd_tf  # noqa: F401
from pfd_tf import config as config_lib
from pfd_tf.config import Architecture, StudentConfig, ZooModel
from pfd_tf.datasets.ctr import generate_ctr
from pfd_tf.small_data import RECIPE_BATCH, RECIPE_EPOCHS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASCADE = os.path.join(ROOT, "configs", "cascade_ctr.yaml")


def alone(config: config_lib.Config, name: str) -> config_lib.Config:
    """`config` with student `name` as its one (served) student; a two-tower one by model.architecture."""
    student = config.students[config.student_names.index(name)]
    two_tower = student.model is ZooModel.TWO_TOWER
    served = StudentConfig(model=ZooModel.DNN, tower=() if two_tower else student.tower)
    model = dataclasses.replace(config.model, architecture=Architecture.TWO_TOWER if two_tower else Architecture.MLP)
    return dataclasses.replace(config, students=(served,), model=model)


def timed_train(config: config_lib.Config, model_dir: str) -> tuple[dict, float]:
    from pfd_tf.trainer import train

    start = time.perf_counter()
    metrics = train(config, model_dir, verbose=0, export=False)
    return metrics, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pfd_cascade_")
    recipe = [f"train.batch_size={RECIPE_BATCH}", f"train.epochs={RECIPE_EPOCHS}"]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        data = os.path.join(work, f"world{seed}")
        generate_ctr(data, rows=args.rows, seed=seed)
        paths = [f"data.train_files=[{data}/train/*.csv]", f"data.eval_files=[{data}/test/*.csv]"]
        config = config_lib.load(CASCADE, paths + recipe + args.set)
        metrics, together = timed_train(config, os.path.join(work, f"cascade{seed}"))
        joint = {"student": metrics["student"], **metrics["students"]}
        separate, apart = {}, 0.0
        for name in config.student_names:
            single, seconds = timed_train(alone(config, name), os.path.join(work, f"{name}{seed}"))
            separate[name], apart = single["student"], apart + seconds
        for name in config.student_names:
            rows.append((seed, name, joint[name]["auc"], separate[name]["auc"]))
            print(f"world {seed} {name}: AUC one run {joint[name]['auc']:.4f}, alone {separate[name]['auc']:.4f}",
                  flush=True)
        print(f"world {seed}: wall seconds one run {together:.1f}, three runs {apart:.1f} "
              f"({apart / together:.2f}x); steps {metrics['steps']}", flush=True)
        rows.append((seed, "wall seconds", together, apart))
    print(f"\nCTR world, {args.rows} rows, batch {RECIPE_BATCH}, {RECIPE_EPOCHS} epochs\n")
    print("| world | student | one run (AUC or s) | separately |\n|---|---|---|---|")
    for seed, name, a, b in rows:
        print(f"| {seed} | {name} | {a:.4f} | {b:.4f} |" if name != "wall seconds" else f"| {seed} | {name} | {a:.1f} | {b:.1f} |")


if __name__ == "__main__":
    main()
