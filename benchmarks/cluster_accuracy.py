"""Does a cluster epoch train the student as well as a single-machine epoch? Held-out AUC side by side.

    python benchmarks/cluster_accuracy.py [--rows 600000] [--workers 2] [--ps 1] [--set key=value ...]

On the synthetic CTR world (one epoch, as its config trains; data is what
limits its two-tower student, so a cluster that skipped or doubled rows
would show), trains the config once on one machine (`pfd-train`) and once on
a loopback cluster (`pfd-launch`, the tf.data service feeding the workers),
and prints both held-out
student and teacher AUCs and their differences.  Before the tf.data service,
a 2-worker epoch missed 12-40% of the rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import pfd_tf  # noqa: F401
from pfd_tf.datasets.ctr import generate_ctr
from pfd_tf.datasets.ctr_world import DEFAULT_ROWS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ps", type=int, default=1)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="pfd_cluster_accuracy_")
    config = generate_ctr(os.path.join(work, "data"), rows=args.rows, seed=args.seed)
    sets = [a for s in args.set for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": ROOT}
    runs = {
        "single machine": [sys.executable, "-m", "pfd_tf.cli.train"],
        f"{args.workers} workers, {args.ps} PS": [sys.executable, "-m", "launch.cli", "--workers", str(args.workers),
                                                 "--ps", str(args.ps), "--noevaluator"],
    }
    metrics = {}
    for i, (name, command) in enumerate(runs.items()):
        model_dir = os.path.join(work, f"run-{i}")
        proc = subprocess.run([*command, "--config", config, "--model_dir", model_dir, *sets],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        with open(os.path.join(model_dir, "metrics.json")) as f:
            metrics[name] = json.load(f)
        m = metrics[name]
        print(f"{name}: student AUC {m['student']['auc']:.4f}, steps {m['steps']}, "
              f"{m['examples_per_second']:.0f} examples/s", flush=True)
    (single, cluster) = metrics.values()
    print(f"\nCTR world ({args.rows} impressions, seed {args.seed}), one epoch of {single['steps']} steps, "
          f"mode {single['mode']}\n")
    print("| run | student AUC | teacher AUC | examples/s |\n|---|---|---|---|")
    for name, m in metrics.items():
        teacher = f"{m['teacher']['auc']:.4f}" if m["teacher"] else "-"
        print(f"| {name} | {m['student']['auc']:.4f} | {teacher} | {m['examples_per_second']:.0f} |")
    print(f"\ncluster - single machine, student AUC: {cluster['student']['auc'] - single['student']['auc']:+.4f}")


if __name__ == "__main__":
    main()
