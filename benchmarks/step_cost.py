"""What one training step costs on the CTR world, by behaviours read and by method, side by side.

    python benchmarks/step_cost.py [--rows 20000] [--repeats 20] [--lengths 50,20,0] [--modes baseline,pfd,pfd_md]

Generates a small CTR world, takes one batch of 1024 from the real input
pipeline, and times `Distiller.train_step` (compiled with `tf.function`, after
a warm-up call) on that fixed batch, so the numbers are the model's cost
without input parsing: for each number of behaviours the encoder reads
(`max_len` of the `hist_*` features; 0 = no behaviour encoder) and each mode.
Prints milliseconds per step and the ratio to the first row's baseline.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.datasets.ctr import generate_ctr
from pfd_tf.datasets.ctr_world import HIST_SEQUENCES
from pfd_tf.trainer import build_and_compile


def overrides_for(length: int) -> list[str]:
    if length == 0:
        return ["model.behaviour_items=[]", "model.behaviour_side=[]", "model.teacher_target_features=[]"]
    return [f"features.{name}.max_len={length}" for name in HIST_SEQUENCES]


def step_ms(config, repeats: int) -> float:
    keras.backend.clear_session()
    batch = next(iter(make_dataset_fn(config, "train", config.train.batch_size, training=True)(None)))
    model = build_and_compile(config, tf.distribute.get_strategy())
    step = tf.function(model.train_step)
    float(step(batch)["loss"])  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        float(step(batch)["loss"])
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--lengths", default="50,20,0")
    parser.add_argument("--modes", default="baseline,pfd,pfd_md")
    args = parser.parse_args()

    config_path = generate_ctr(os.path.join(tempfile.mkdtemp(prefix="pfd_step_"), "data"), rows=args.rows, seed=0)
    modes = args.modes.split(",")
    print("| behaviours read | " + " | ".join(f"{m} ms/step" for m in modes) + " |")
    print("|---" * (len(modes) + 1) + "|")
    reference = None
    for length in (int(x) for x in args.lengths.split(",")):
        cells = []
        for mode in modes:
            config = config_lib.load(config_path, [f"distill.mode={mode}", *overrides_for(length)])
            ms = step_ms(config, args.repeats)
            reference = reference or ms
            cells.append(f"{ms:.0f} ({ms / reference:.2f})")
        label = str(length) if length else "none (no encoder)"
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print("\n(ratio to the first row's first mode, in parentheses; median of "
          f"{args.repeats} steps of batch {config.train.batch_size}, fixed batch)")


if __name__ == "__main__":
    main()
