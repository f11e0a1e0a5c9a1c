"""The cost argument for a two-tower coarse ranker (Section 5.2 of the PFD paper), measured here.

    python benchmarks/coarse_cost.py [--candidates 100000] [--repeats 5]

1. Scoring N candidates for one user: one user-tower pass plus N inner
   products (what the two-tower student serves), against one tower pass per
   candidate (what interacted features would force: they depend on the item,
   so the mapping must run for every candidate).  Towers as in the paper's
   example: a 1024-dim input, 512-256-128, l2-normalized.  The paper timed
   10^5 separate calls (89.695 s vs 0.108 s, ~830x).  Here the per-candidate
   passes run two ways: batched (10^4 at a time), the cheapest way a CPU can
   do them, so that ratio is a lower bound; and as separate one-candidate
   calls like the paper's, timed over `--single-calls` calls and scaled to N.
2. The exported retrieval model (`export/retrieval`, tensorflow-recommenders'
   BruteForce over the index): median latency of one request for the top 100
   of N items, after training a two-tower student on the synthetic CTR world
   (its user tower runs the self-attention encoder over the behaviour
   sequence) and indexing N generated items.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time

import numpy as np

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import resolve_files
from pfd_tf.datasets.ctr import generate_ctr
from pfd_tf.export_two_tower import export_two_tower, raw_columns
from pfd_tf.models.two_tower import ProjectionTower
from pfd_tf.trainer import train


def _median_seconds(fn, repeats):
    fn()  # warm-up: tracing and allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tower_cost(candidates: int, repeats: int, single_calls: int) -> None:
    tower = ProjectionTower((512, 256, 128))
    user_input = tf.random.normal([1, 1024])
    item_inputs = tf.random.normal([candidates, 1024])
    item_vectors = tf.math.l2_normalize(tf.random.normal([candidates, 128]), axis=-1)
    tower(user_input)

    @tf.function
    def two_tower():
        return tf.linalg.matvec(item_vectors, tower(user_input, training=False)[0])

    @tf.function
    def per_candidate():
        return tf.concat([tower(item_inputs[i : i + 10_000], training=False)
                          for i in range(0, candidates, 10_000)], axis=0)

    @tf.function
    def one_candidate(x):
        return tower(x, training=False)

    def separate_calls():
        for i in range(single_calls):
            one_candidate(item_inputs[i : i + 1]).numpy()

    fast = _median_seconds(lambda: two_tower().numpy(), repeats)
    slow = _median_seconds(lambda: per_candidate().numpy(), repeats)
    single = _median_seconds(separate_calls, repeats) * candidates / single_calls
    print(f"\n| scoring {candidates} candidates for one user | median seconds | / two-tower |\n|---|---|---|")
    print(f"| one user-tower pass + {candidates} inner products | {fast:.5f} | 1 |")
    print(f"| one tower pass per candidate, batched by 10^4 | {slow:.5f} | {slow / fast:.0f}x |")
    print(f"| one tower call per candidate ({single_calls} calls timed, x{candidates // single_calls}) "
          f"| {single:.3f} | {single / fast:.0f}x |")


def retrieval_latency(candidates: int, repeats: int) -> None:
    work = tempfile.mkdtemp(prefix="pfd_retrieval_")
    config_path = generate_ctr(os.path.join(work, "data"), rows=20_000, seed=0)
    config = config_lib.load(config_path, ["distill.mode=baseline", "train.steps=40", "train.log_every=40"])
    keras.backend.clear_session()
    metrics = train(config, os.path.join(work, "run"), verbose=0)

    item_specs = [f for f in config.student_features if f.side.value == "item"]
    rng = np.random.default_rng(0)
    items = os.path.join(work, "items.csv")
    with open(items, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([s.source for s in item_specs])
        for i in range(candidates):
            writer.writerow([f"{i}" if s.name == "item_id" else (f"{rng.lognormal(3, 1):.2f}" if s.kind.value == "numeric"
                             else str(rng.integers(0, 1000))) for s in item_specs])
    paths = export_two_tower(config, metrics["checkpoint"], os.path.join(work, "export"), [items], k=100)
    retrieval = tf.saved_model.load(paths["retrieval"]).signatures["serving_default"]
    with open(resolve_files(config, "eval_files")[0]) as f:
        row = next(csv.DictReader(f))
    user_specs = [s for s in config.student_features if s.source in retrieval.structured_input_signature[1]]
    request = raw_columns(user_specs, [row], config.data.sequence_delimiter)
    latency = _median_seconds(lambda: retrieval(**request)["item_ids"].numpy(), max(repeats, 50))
    print(f"\nexported retrieval model: top-100 of {candidates} items, one user: "
          f"median {latency * 1000:.2f} ms over {max(repeats, 50)} calls")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--single-calls", type=int, default=1000)
    args = parser.parse_args()
    tower_cost(args.candidates, args.repeats, args.single_calls)
    retrieval_latency(args.candidates, args.repeats)


if __name__ == "__main__":
    main()
