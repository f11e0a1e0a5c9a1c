"""What PFD costs over the baseline, and how far pfd_tf's step is from the hardware, in one run.

    python benchmarks/overhead.py [--rows 100000] [--steps 200] [--repeats 3] [--set key=value ...]
                                  [--profile DIR]

Trains on the same synthetic CVR data, at the paper's CVR tower sizes
(512-256-128 for teacher and student, Section 5.3), in rounds that alternate
the runs so that machine noise hits all alike (a first, uncounted round warms
caches); every number is the median over the counted rounds, steady state
only (`metrics.json`'s `epoch_seconds` after the first epoch, which includes
tracing the step function).  It prints:

1. wall ratio: PFD's training seconds / the baseline's (the student alone),
   beside the FLOP ratio: PFD's / the baseline's dense train FLOPs per
   example, counted from the built models: 2*in*out per Dense kernel forward,
   x3 for training (forward + the two backward matmuls); lookups are no FLOPs.
   The paper reports +3.6% wall time on its parameter-server cluster (Table 8),
   where embedding traffic dominates; on a CPU the second tower's arithmetic
   is most of the cost, and the wall ratio stays below the FLOP ratio by what
   both modes pay alike (input, lookups, `fit`).
2. dense GFLOP/s of each mode (train FLOPs per example x examples/s) as a
   fraction of what a `tf.function` of plain `tf.matmul`s of the same shapes
   (forward x@W, backward dy@W^T and x^T@dy per kernel, float32, same batch)
   reaches on this machine in this run: how much of the step is arithmetic.
3. pfd_tf's baseline (`fit` + `Distiller.train_step`, reading with
   `data.cache=true`) against a hand-written loop training the same student
   (same tables and tower, same Adagrad and schedule, log loss, a
   `tf.GradientTape` step in a `tf.function` that pulls the next batch from
   the iterator, as `fit` does) on batches already encoded and held in memory:
   throughput ratio, pfd_tf / hand-written (1.0 = no framework overhead).  Beside
   it, pfd_tf's compiled step (`fit`'s train function, called directly) on the
   hand-written loop's batches: the step's own cost without `fit` and without
   pfd_tf's input pipeline.

With `--profile DIR` it then runs a few steps of the baseline and PFD under
TensorFlow's profiler (traces under DIR/<mode>/plugins/profile/) and prints
milliseconds per step by op category, read from the trace's `.xplane.pb`
(op run times by op name and type; the step's ops run on several threads),
beside the input pipeline's own time per batch, timed alone before the model.
`--repeats 0 --profile DIR` profiles only.
"""
from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import statistics
import tempfile
import time

import pfd_tf  # noqa: F401
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.datasets.cvr import generate_cvr
from pfd_tf.distill.build import build_distiller
from pfd_tf.distill.losses import logloss
from pfd_tf.optim import make_optimizer
from pfd_tf.trainer import build_and_compile, train

TOWER = "[512,256,128]"
CACHED = "baseline, data.cache"  # the baseline reading its encoded rows from memory
HAND = "hand-written loop"
STEP = "train function"  # pfd_tf's compiled step, called without `fit`, on the hand-written loop's batches
WAIT = "waiting for input"  # IteratorGetNext inside the step
PARSE = "parsing/IO (tf.data map ops)"


# --- 1. dense FLOPs counted from the built models --------------------------------------------
def dense_kernels(config) -> list[tuple[int, int]]:
    """(in, out) of every Dense kernel the step trains: the student's, and the teacher's in PFD modes."""
    keras.backend.clear_session()
    model = build_distiller(config)
    rankers = [r for r in (model.student, model.teacher) if r is not None and r.trainable]
    layers = {id(m): m for r in rankers for m in r.submodules if isinstance(m, keras.layers.Dense)}
    return [tuple(int(d) for d in layer.kernel.shape) for layer in layers.values()]


def train_flops(kernels) -> int:
    """Dense FLOPs per example of one training step: 3 x (2*in*out) per kernel."""
    return sum(3 * 2 * n_in * n_out for n_in, n_out in kernels)


# --- 2. what plain matmuls of the same shapes reach ---------------------------------------
def matmul_gflops(kernels, batch: int, min_seconds: float = 2.0) -> float:
    """GFLOP/s of a tf.function running each kernel's forward and two backward matmuls."""
    args = [(tf.random.normal([batch, n_in]), tf.random.normal([n_in, n_out]), tf.random.normal([batch, n_out]))
            for n_in, n_out in kernels]

    @tf.function
    def step():
        return [(tf.matmul(x, w), tf.matmul(dy, w, transpose_b=True), tf.matmul(x, dy, transpose_a=True))
                for x, w, dy in args]

    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while calls < 10 or time.perf_counter() - start < min_seconds:
        step()
        calls += 1
    return train_flops(kernels) * batch * calls / (time.perf_counter() - start) / 1e9


# --- 3. the hand-written loop ---------------------------------------------------------------
IN_MEMORY = 20  # encoded batches that the in-memory loops cycle over


def examples_per_second(step, config, steps: int) -> float:
    """Steady-state examples/s of `step(iterator)` over IN_MEMORY batches of the training stream held in
    memory (`.take(N).cache()`), after one pass that traces the step and fills the cache."""
    data = make_dataset_fn(config, "train", config.train.batch_size, training=True)(None)
    iterator = iter(data.take(IN_MEMORY).cache().repeat().prefetch(2))
    for _ in range(IN_MEMORY):
        step(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        out = step(iterator)
    float(tf.nest.flatten(out)[0])
    return steps * config.train.batch_size / (time.perf_counter() - start)


def hand_written(config, steps: int) -> float:
    """Examples/s of a plain GradientTape loop training the baseline student on in-memory batches."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.train.seed)
    student = build_distiller(config).student
    optimizer = make_optimizer(config.train)
    variables = student.trainable_variables
    optimizer.build(variables)

    @tf.function
    def step(iterator):
        ids, labels = next(iterator)
        with tf.GradientTape() as tape:
            loss = logloss(next(iter(labels.values())), student(ids, training=True))  # the one task's labels
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return examples_per_second(step, config, steps)


def distiller_steps(config, steps: int) -> float:
    """Examples/s of pfd_tf's own step (`fit`'s train function, without `fit`) on the same in-memory batches."""
    keras.backend.clear_session()
    model = build_and_compile(config, tf.distribute.get_strategy())
    return examples_per_second(model.make_train_function(), config, steps)


# --- 4. the profile -------------------------------------------------------------------------
OP_EVENT = re.compile(r"^([^:\s]+):(\w+)$")  # "scope/node:OpType", as the executor names an op's run


def category(name: str, op: str) -> str:
    top = name.split("/")[0]
    if "MatMul" in op:
        return "dense matmuls"
    if "batch_norm" in name or op.startswith("FusedBatchNorm"):
        return "batch norm"
    if top.startswith("Adagrad") or "SparseApply" in op:
        sparse = "Sparse" in op or "Scatter" in op or "Segment" in op or "Gather" in op or op == "Unique"
        return "sparse updates" if sparse else "dense updates"
    if "auc" in top or "logloss" in top or "loss" in top or op == "Cumsum" or ("/" not in name and op != "AddN"):
        return "metrics & loss"  # tf_keras's AUC update runs at the root scope (segment sums, cumsum)
    if "Gather" in op or "Segment" in op or "embedding" in name or "_inputs/" in name:
        return "embedding lookups"
    return "other"


def read_xplane(path: str) -> tuple[collections.Counter, collections.Counter]:
    """Seconds by category of the op runs in a trace (the step's threads and tf.data's), and input waits;
    and the seconds of "other" by op type."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    seconds, other = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                match = OP_EVENT.match(name)
                if name == "IteratorGetNextOp::DoCompute":  # the step's IteratorGetNext, until a batch is ready
                    seconds[WAIT] += event.duration_ps / 1e12
                elif match:
                    where = PARSE if line.name.startswith("tf_data") else category(*match.groups())
                    seconds[where] += event.duration_ps / 1e12
                    if where == "other":
                        other[match.group(2)] += event.duration_ps / 1e12
    return seconds, other


def profile(config, logdir: str, steps: int = 10) -> None:
    """Prints ms/step by category for `steps` steps of `fit`'s train function under the profiler."""
    keras.backend.clear_session()
    batch = config.train.batch_size
    iterator = iter(make_dataset_fn(config, "train", batch, training=True)(None))
    for _ in range(3):  # fills the shuffle buffer
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):  # the input pipeline alone, with the cores to itself
        next(iterator)
    alone = (time.perf_counter() - start) / steps
    model = build_and_compile(config, tf.distribute.get_strategy())
    train_function = model.make_train_function()  # what `fit` calls once per step
    for _ in range(3):
        train_function(iterator)
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        logs = train_function(iterator)
    float(logs["loss"])
    step_s = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    mode = config.distill.mode.value
    print(f"  {mode}: {step_s * 1e3:.1f} ms/step under the profiler; the input pipeline alone "
          f"{alone * 1e3:.1f} ms/batch")
    traces = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    try:
        seconds, other = read_xplane(traces[-1])
    except (IndexError, ImportError) as err:  # no trace, or no XSpace proto in this build
        print(f"    no readable profiler trace under {logdir} ({err!r}): no breakdown")
        return
    for name, value in seconds.most_common():
        print(f"    {name:>28}: {value / steps * 1e3:6.1f} ms/step = {value / steps / step_s:4.0%} of step time")
    ops = sum(v for k, v in seconds.items() if k not in (WAIT, PARSE))
    print(f"    {'step ops, all categories':>28}: {ops / steps * 1e3:6.1f} ms/step = {ops / steps / step_s:4.0%}"
          f"   ({traces[-1]})")
    print("    other, by op type: " + ", ".join(f"{op} {v / steps * 1e3:.1f}" for op, v in other.most_common(5))
          + " ms/step")


# --- the rounds -----------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="counted rounds (0: only --profile)")
    parser.add_argument("--set", action="append", default=[], help="key=value config override, for every run")
    parser.add_argument("--profile", metavar="DIR", help="also profile a few steps of baseline and PFD into DIR")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="pfd_overhead_")
    config_path = generate_cvr(os.path.join(work, "data"), rows=args.rows, seed=0)
    common = [f"model.student_tower={TOWER}", f"model.teacher_tower={TOWER}", f"train.steps={args.steps}",
              f"train.log_every={args.steps // 5}", "distill.swap_step=0", *args.set]
    runs = {"baseline": ["distill.mode=baseline"], "pfd": ["distill.mode=pfd"],
            CACHED: ["distill.mode=baseline", "data.cache=true"]}
    configs = {name: config_lib.load(config_path, [*common, *extra]) for name, extra in runs.items()}
    batch = configs["baseline"].train.batch_size
    steady = args.steps - args.steps // 5  # steps after the first epoch
    kernels = {mode: dense_kernels(configs[mode]) for mode in ("baseline", "pfd")}
    flops = {mode: train_flops(k) for mode, k in kernels.items()}

    seconds = collections.defaultdict(list)  # run -> steady seconds, per counted round
    matmul = collections.defaultdict(list)  # mode -> GFLOP/s of its matmuls, per counted round
    for repeat in range(args.repeats + 1 if args.repeats else 0):
        for name, config in configs.items():
            keras.backend.clear_session()
            metrics = train(config, os.path.join(work, f"{name}-{repeat}".replace(", ", "-")), verbose=0)
            seconds[name].append(sum(metrics["epoch_seconds"][1:]))
        for name, run in ((STEP, distiller_steps), (HAND, hand_written)):
            seconds[name].append(steady * batch / run(configs["baseline"], steady))
        for mode in kernels:
            matmul[mode].append(matmul_gflops(kernels[mode], batch))
        if repeat == 0:  # the warm-up round
            seconds.clear()
            matmul.clear()
            print("round 0 (warm-up) done", flush=True)
        else:
            print(f"round {repeat}: " + ", ".join(f"{name} {s[-1]:.2f}s" for name, s in seconds.items()), flush=True)

    if args.repeats:
        med = {name: statistics.median(s) for name, s in seconds.items()}
        speed = {name: steady * batch / s for name, s in med.items()}
        print(f"\n{steady} steps of batch {batch} after the first epoch, student tower "
              f"{list(configs['pfd'].model.student_tower)}, teacher tower {list(configs['pfd'].teacher_tower)}, "
              f"median of {args.repeats} rounds:")
        print("1. PFD / baseline")
        print(f"  wall time {med['pfd']:.2f}s / {med['baseline']:.2f}s = {med['pfd'] / med['baseline']:.2f}   "
              f"dense train FLOPs per example {flops['pfd'] / 1e6:.2f}M / {flops['baseline'] / 1e6:.2f}M = "
              f"{flops['pfd'] / flops['baseline']:.2f}")
        print(f"2. dense GFLOP/s against tf.matmul of the same shapes, batch {batch}")
        for mode in kernels:
            achieved = flops[mode] * speed[mode] / 1e9
            reference = statistics.median(matmul[mode])
            print(f"  {mode}: {achieved:.1f} GFLOP/s = {achieved / reference:.0%} of matmul's {reference:.1f}")
        print("3. examples/s reading encoded batches from memory")
        print(f"  pfd_tf baseline (fit, data.cache=true) {speed[CACHED]:,.0f} / hand-written loop {speed[HAND]:,.0f}"
              f" = {speed[CACHED] / speed[HAND]:.2f}")
        print(f"  (pfd_tf's train function on the hand-written loop's batches {speed[STEP]:,.0f} = "
              f"{speed[STEP] / speed[HAND]:.2f}; fit reading the CSV files {speed['baseline']:,.0f})")

    if args.profile:
        print("\n4. where the time goes: op run time from the profiler's trace; ops of the step run on several "
              "threads\n   and tf.data's threads overlap the step, so the rows can add up to more than 100%")
        for mode in ("baseline", "pfd"):
            profile(configs[mode], os.path.join(args.profile, mode))


if __name__ == "__main__":
    main()
