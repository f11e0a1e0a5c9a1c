"""Which rows grouped cluster runs train: repeated pfd-launch runs of tests/cluster/test_grouped.py's world.

    python benchmarks/grouped_visitation.py --out DIR [--runs 5] [--log-every 26] [--ps 1]

4 files of 64 rows, each row its own id (`rid`, `train.count_visits`), grouped by `user` (13 a file: 52
groups), 4 groups a batch, 26 steps (2 epochs), 2 workers.  One JSON line a run: rows by times trained
(`{"2": 256}` is exact), the steps taken (`train.steps` or a few more: pfd_tf.cluster.drain), `examples`,
`epochs` and the wall time.  Run from the checkout to measure (it launches that checkout's code).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

from test_visitation import _visits, write_rid_world  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--log-every", type=int, default=26)
    parser.add_argument("--ps", type=int, default=1)
    args = parser.parse_args()
    world = os.path.join(args.out, "world")
    config, _ = write_rid_world(world, files=4, rows_per_file=64)
    with open(config) as f:
        raw = yaml.safe_load(f)
    raw["data"].update({"group_by": ["user"], "groups_per_batch": 4, "shuffle_buffer": 8})
    with open(config, "w") as f:
        yaml.safe_dump(raw, f)
    for run in range(args.runs):
        model_dir = os.path.join(args.out, f"run_{args.log_every}_{args.ps}_{run}")
        started = time.time()
        command = [sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir, "--workers", "2",
                   "--ps", str(args.ps), "--noevaluator", "--set", "train.steps=26",
                   "--set", f"train.log_every={args.log_every}"]
        proc = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode:
            print(json.dumps({"run": run, "exit": proc.returncode, "tail": proc.stdout[-2000:]}), flush=True)
            continue
        with open(os.path.join(model_dir, "metrics.json")) as f:
            metrics = json.load(f)
        print(json.dumps({"run": run, "log_every": args.log_every, "ps": args.ps, "by_count": _visits(model_dir),
                          "steps": metrics["steps"], "examples": metrics["examples"], "epochs": metrics["epochs"],
                          "seconds": round(time.time() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
