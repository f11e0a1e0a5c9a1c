"""Wall-time cost of PFD over the baseline, measured side by side in one run.

    python benchmarks/overhead.py [--rows 100000] [--steps 200] [--repeats 3] [--set key=value ...]

Trains the baseline (student alone) and PFD (teacher + student sharing their
input embeddings, Share&Sync) on the same synthetic CVR data, at the paper's
CVR tower sizes (512-256-128 for both, Section 5.3), alternating the two so
that machine noise hits both alike.  Prints the median training seconds of
each (`metrics.json`'s `epoch_seconds` after the first epoch, which
includes tracing the step function) and the ratio PFD / baseline.  The paper reports
+3.6% on its parameter-server cluster (Table 8), where the embedding traffic
dominates; on a CPU the second tower's arithmetic is most of the cost.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras
from pfd_tf import config as config_lib
from pfd_tf.data.synthetic import generate_cvr
from pfd_tf.trainer import train

TOWER = "[512,256,128]"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="baseline,pfd")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="pfd_overhead_")
    config_path = generate_cvr(os.path.join(work, "data"), rows=args.rows, seed=0)
    common = [f"model.student_tower={TOWER}", f"model.teacher_tower={TOWER}", f"train.steps={args.steps}",
              f"train.log_every={args.steps // 5}", "distill.swap_step=0", *args.set]
    modes = args.modes.split(",")
    seconds = {m: [] for m in modes}
    for repeat in range(args.repeats + 1):  # the first round warms caches and is not counted
        for mode in modes:
            keras.backend.clear_session()
            config = config_lib.load(config_path, [f"distill.mode={mode}", *common])
            metrics = train(config, os.path.join(work, f"{mode}-{repeat}"), verbose=0)
            steady = sum(metrics["epoch_seconds"][1:])
            if repeat:
                seconds[mode].append(steady)
            print(f"round {repeat} {mode}: {steady:.2f}s for {args.steps * 4 // 5} steps after the first epoch",
                  flush=True)
    base = statistics.median(seconds[modes[0]])
    print(f"\n{args.steps * 4 // 5} steps of batch {config.train.batch_size}, student tower "
          f"{list(config.model.student_tower)}, teacher tower {list(config.teacher_tower)}, median of {args.repeats}:")
    for mode in modes:
        med = statistics.median(seconds[mode])
        print(f"  {mode:>8}: {med:7.2f}s  ratio {med / base:.3f} ({(med / base - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
