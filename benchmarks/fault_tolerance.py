"""What a lost task costs: steps lost or repeated, and held-out AUC against an undisturbed run.

    python benchmarks/fault_tolerance.py [--rows 50000] [--steps 200] [--log_every 20]

On the synthetic CVR world, runs a loopback cluster (2 workers, 2 PS) four
times: undisturbed; a worker killed; the chief killed and restarted by
`--restart-on-failure`; a parameter server killed, then the cluster launched
again.  Each kill happens once the checkpoint at 40% of the steps exists.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from pfd_tf.datasets.cvr import generate_cvr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(config, model_dir, sets, *extra):
    command = [sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir,
               "--workers", "2", "--ps", "2", "--noevaluator", *extra]
    for item in sets:
        command += ["--set", item]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def latest_step(model_dir):
    """Step of the last committed checkpoint (the one a restarted chief resumes from)."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def kill_when(model_dir, step, task):
    while latest_step(model_dir) < step:
        time.sleep(0.2)
    with open(os.path.join(model_dir, "cluster.json")) as f:
        os.kill(json.load(f)["tasks"][task]["pid"], signal.SIGKILL)
    return latest_step(model_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--log_every", type=int, default=20)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pfd_faults_")
    config = generate_cvr(os.path.join(work, "data"), rows=args.rows, seed=0)
    sets = [f"train.steps={args.steps}", f"train.log_every={args.log_every}"]
    kill_at = int(args.steps * 0.4) // args.log_every * args.log_every

    rows = []
    for case in ("undisturbed", "worker killed", "chief killed", "PS killed"):
        model_dir = os.path.join(work, case.replace(" ", "_"))
        extra = ("--restart-on-failure",) if case == "chief killed" else ()
        proc = launch(config, model_dir, sets, *extra)
        checkpoint = None
        if case != "undisturbed":
            task = {"worker killed": "worker-1", "chief killed": "chief", "PS killed": "ps-1"}[case]
            checkpoint = kill_when(model_dir, kill_at, task)
        out, _ = proc.communicate()
        if case == "PS killed":
            print(f"PS killed: launcher exit status {proc.returncode}; relaunching", flush=True)
            proc = launch(config, model_dir, sets)
            out, _ = proc.communicate()
        if proc.returncode:
            sys.exit(f"{case}: failed\n{out[-3000:]}")
        resumed = re.search(r"resumed from \S+ at step (\d+)", out)
        with open(os.path.join(model_dir, "metrics.json")) as f:
            metrics = json.load(f)
        rows.append((case, checkpoint, int(resumed.group(1)) if resumed else None, metrics["steps"],
                     metrics["student"]["auc"], metrics["teacher"]["auc"]))
        print(f"{case}: steps {metrics['steps']}, student AUC {metrics['student']['auc']:.4f}", flush=True)

    base_auc = rows[0][4]
    print(f"\n2 workers, 2 PS; {args.steps} steps, checkpoint every {args.log_every}; kill after the "
          f"checkpoint at step {kill_at}\n")
    print("| case | last checkpoint at kill | resumed at step | final steps | student AUC | Δ vs undisturbed "
          "| teacher AUC |\n|---|---|---|---|---|---|---|")
    for case, checkpoint, resumed, steps, student, teacher in rows:
        print(f"| {case} | {checkpoint if checkpoint is not None else '-'} | "
              f"{resumed if resumed is not None else '-'} | {steps} | {student:.4f} | {student - base_auc:+.4f} "
              f"| {teacher:.4f} |")


if __name__ == "__main__":
    main()
