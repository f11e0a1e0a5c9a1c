"""Examples/second of one PFD config, single-machine and on loopback clusters, in one run.

    python benchmarks/cluster_throughput.py [--rows 100000] [--steps 200] [--sizes 1x1,1x2,2x1,2x2]
                                            [--spe 1,4,8,16] [--set key=value ...]

Runs `pfd-train` (no TF_CONFIG) and `pfd-launch --workers W --ps P` on the
same synthetic CVR data and config, and prints each one's steady-state
examples/second (epochs after the first, which includes tracing) and its
ratio to single-machine.  On one 2-core machine every task shares the same
cores, so this measures the coordination overhead of ParameterServerStrategy
(RPCs to the servers, closure scheduling, the tf.data service), not scaling.
`--spe` also runs 1 worker, 1 PS at each `train.steps_per_execution` (steps
per coordinator round trip), which is how the cluster default was chosen.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import pfd_tf  # noqa: F401
from pfd_tf.datasets.cvr import generate_cvr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def steady_rate(model_dir: str, batch_size: int) -> float:
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    seconds = metrics["epoch_seconds"][1:]
    steps = metrics["steps"] * len(seconds) / len(metrics["epoch_seconds"])
    return steps * batch_size / sum(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--sizes", default="1x1,1x2,2x1,2x2", help="WORKERSxPS clusters to run")
    parser.add_argument("--spe", default="", help="steps_per_execution values to run on 1 worker, 1 PS")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="pfd_cluster_bench_")
    config = generate_cvr(os.path.join(work, "data"), rows=args.rows, seed=0)
    sets = [f"train.steps={args.steps}", f"train.log_every={args.steps // 5}", *args.set]
    set_args = [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": ROOT}
    batch = 1024

    runs = {"single machine": [sys.executable, "-m", "pfd_tf.cli.train"]}
    for size in args.sizes.split(","):
        workers, ps = size.split("x")
        runs[f"{workers} worker(s), {ps} PS"] = [sys.executable, "-m", "launch.cli", "--workers", workers,
                                                  "--ps", ps, "--noevaluator"]
    extra = {name: [] for name in runs}
    for spe in filter(None, args.spe.split(",")):
        name = f"1 worker(s), 1 PS, steps_per_execution {spe}"
        runs[name] = [sys.executable, "-m", "launch.cli", "--workers", "1", "--ps", "1", "--noevaluator"]
        extra[name] = ["--set", f"train.steps_per_execution={spe}"]
    rates = {}
    for i, (name, command) in enumerate(runs.items()):
        model_dir = os.path.join(work, f"run-{i}")
        proc = subprocess.run([*command, "--config", config, "--model_dir", model_dir, *set_args, *extra[name]],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        rates[name] = steady_rate(model_dir, batch)
        print(f"{name}: {rates[name]:.0f} examples/s", flush=True)
    base = rates["single machine"]
    print(f"\nPFD, {args.steps} steps of batch {batch}, {args.rows} rows; steady state after the first epoch\n")
    print("| setup | examples/s | ratio to single machine |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
