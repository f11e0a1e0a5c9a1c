"""Measures a pfd-launch cluster's faults of issue 19 on real loopback clusters, and prints a timeline.

    python benchmarks/cluster_faults.py stopped-ps [--set cluster.stall_timeout_seconds=10]
    python benchmarks/cluster_faults.py killed-worker
    python benchmarks/cluster_faults.py visitation --files 7 --rows-per-file 25000 --batch 1024 [--epochs 1]

- `stopped-ps`: 1 worker, 2 parameter servers, the 60-step tiny world of
  tests/cluster/cluster_runs.py; `kill -STOP` on ps-1 after the step-10
  checkpoint; what the launcher prints after it, its exit status and when.
- `killed-worker`: 2 workers, 1 PS, the same world; worker-1 killed after
  the step-10 checkpoint; when each later step line comes.
- `visitation`: 2 workers, 1 PS on a world whose every row carries its id
  (tests/cluster/test_visitation.py's), `train.count_visits`; how many rows were
  trained 0, 1, 2 ... times, and per file the ones trained other than once
  per epoch.  `--files 7 --rows-per-file 25000 --batch 1024` is the shape of
  `pfd-data --scenario cvr` (7 training days of 25,000 rows, the configs'
  batch), `train.log_every` its default (100).

Run from the checkout to measure (it launches that checkout's code).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import yaml

LOG = None  # --log: where every line the launcher printed goes
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from conftest import write_tiny_world  # noqa: E402
from test_cluster_runtime import LONG, _pid, _wait_for_checkpoint  # noqa: E402
from test_visitation import write_rid_world  # noqa: E402


def launch(config: str, model_dir: str, *args: str) -> tuple[subprocess.Popen, list, float]:
    """pfd-launch in the background; (process, [(seconds, line), ...] filled as lines come, its start)."""
    proc = subprocess.Popen([sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir,
                             "--noevaluator", *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list = []
    start = time.monotonic()
    threading.Thread(target=lambda: lines.extend((time.monotonic() - start, line.rstrip()) for line in proc.stdout),
                     daemon=True).start()
    return proc, lines, start


def sets(items) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def shown(lines, since: float, keep=("step ", "[launcher]", "error", "warning")) -> None:
    if LOG:
        with open(LOG, "w") as f:
            f.writelines(f"{seconds:8.1f} {line}\n" for seconds, line in lines)
    for seconds, line in lines:
        if seconds >= since and any(word in line for word in keep):
            print(f"{seconds - since:7.1f} s  {line[:240]}")


def stopped_ps(work: str, extra) -> None:
    config = write_tiny_world(work, rows=2000)
    model_dir = os.path.join(work, "run")
    proc, lines, start = launch(config, model_dir, "--workers", "1", "--ps", "2", *sets(LONG + extra))
    _wait_for_checkpoint(model_dir, 10)
    ps = _pid(model_dir, "ps-1")
    os.kill(ps, signal.SIGSTOP)
    stopped = time.monotonic() - start
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        print("no exit within 300 s of SIGSTOP")
        proc.kill()
        proc.wait()
        os.kill(ps, signal.SIGKILL)
    ended = time.monotonic() - start - stopped
    time.sleep(0.5)
    print(f"SIGSTOP to ps-1 {stopped:.1f} s after the launch; after it:")
    shown(lines, stopped)
    print(f"exit status {proc.returncode}, {ended:.0f} s after SIGSTOP")


def killed_worker(work: str, extra) -> None:
    config = write_tiny_world(work, rows=2000)
    model_dir = os.path.join(work, "run")
    proc, lines, _ = launch(config, model_dir, "--workers", "2", "--ps", "1", *sets(LONG + extra))
    _wait_for_checkpoint(model_dir, 10)
    os.kill(_pid(model_dir, "worker-1"), signal.SIGKILL)
    proc.wait(timeout=600)
    time.sleep(0.5)
    shown(lines, 0)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        print(f"exit status {proc.returncode}; steps {json.load(f)['steps']}")


def visitation(work: str, extra, files: int, rows_per_file: int, batch: int, epochs: float) -> None:
    config, rows = write_rid_world(work, files=files, rows_per_file=rows_per_file)
    with open(config) as f:
        raw = yaml.safe_load(f)
    raw["train"].update(batch_size=batch, steps=round(epochs * rows / batch))
    raw["train"].pop("log_every")  # the default
    with open(config, "w") as f:
        yaml.safe_dump(raw, f)
    model_dir = os.path.join(work, "run")
    proc, lines, _ = launch(config, model_dir, "--workers", "2", "--ps", "1", *sets(extra))
    proc.wait(timeout=3600)
    shown(lines, 0, keep=("step ", "[launcher]"))
    from pfd_tf._keras import tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    visits = reader.get_tensor(next(k for k in reader.get_variable_to_shape_map() if "visits" in k))[1:rows + 1]
    by_count = {int(k): int(v) for k, v in enumerate(np.bincount(visits)) if v}
    read = sum(n for times, n in by_count.items() if times)
    print(f"{files} files x {rows_per_file} rows, batch {batch}, {raw['train']['steps']} steps: ids by times "
          f"trained {by_count}; read at least once {read}/{rows} = {100 * read / rows:.2f}%")
    for k in range(files):
        trained = {t: int(n) for t, n in enumerate(np.bincount(visits[k * rows_per_file:(k + 1) * rows_per_file]))
                   if n}
        if trained != {round(epochs): rows_per_file}:
            print(f"  file {k}: ids by times trained {trained}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["stopped-ps", "killed-worker", "visitation"])
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--rows-per-file", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--log", help="write every line the launcher printed here")
    args = parser.parse_args()
    global LOG
    LOG = args.log
    work = tempfile.mkdtemp(prefix="pfd_cluster_faults_")
    if args.what == "stopped-ps":
        stopped_ps(work, args.set)
    elif args.what == "killed-worker":
        killed_worker(work, args.set)
    else:
        visitation(work, args.set, args.files, args.rows_per_file, args.batch, args.epochs)


if __name__ == "__main__":
    main()
