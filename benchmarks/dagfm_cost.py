"""Serving cost of the interactions world's teacher and its DAGFM students, side by side in one process.

    python benchmarks/dagfm_cost.py --out bench_out/dagfm_cost [--seed 0] [--steps 20] [--repeats 200]
        [--warmup 5] [--batch_sizes 1,1024] [--set key=value ...] [--reuse]

Issue 22's performance target: the DAGFM student's FLOPs per example >= 4x
below its teacher's and its latency per example at batch 1024 >= 3x below,
"both measured side by side in one run" (KD-DAGFM, Tian et al., WSDM 2023,
Table 3).  World --seed of `pfd-data --scenario interactions` trains its
shipped config (DCN-v2 teacher, KD-DAGFM inner student) and the same with
`student.dagfm_type=outer`, for --steps steps each (cost does not depend on
how well a model learned; accuracy is in docs/results.md).  Then, in this
one process:

1. the cost report (`pfd_tf.cost_report.measure`): the teacher (saved and
   loaded back as `pfd-report` serves it) and both exported students,
   each through its SavedModel's `serving_default` signature, timed in
   rotating rounds: parameters, FLOPs per example, ms per example at each
   batch size (the median call's), and the teacher / student ratios (of the
   medians, `latency_<batch>`, and of the fastest calls, `fastest_call_<batch>`:
   the calls least disturbed by other work on a shared machine);
2. where a batch's time goes, at each batch size, every stage an in-process
   `tf.function` of the restored networks, timed side by side too: the
   encoder (raw columns -> ids; the teacher and the students read the same
   16 features, so one encoder), the embedding lookups (`FeatureBank`: the
   concatenated vector a DCN-v2 reads, the `[B, m, d]` stack a DAGFM reads),
   the network on ids (lookups included) and the whole serving function.
   Network alone = network on ids - lookups (a difference of medians: rough).

Writes everything to OUT/dagfm_cost.json.  Run it on a machine as quiet as
you can make it: a shared CPU moves every number, the side-by-side timing
keeps the ratios fairer than the absolute values.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import common

from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.cost_report import ServingNetwork, export_teachers, latency, load_export, measure, ratios
from pfd_tf.datasets.interactions import generate_interactions
from pfd_tf.evaluation import build_local_model
from pfd_tf.features import FeatureEncoder, serving_signature

STUDENTS = {"dagfm_inner": [], "dagfm_outer": ["student.dagfm_type=outer"]}


def train_runs(out: str, world: str, steps: int, overrides, reuse: bool = False) -> dict[str, str]:
    """Student name -> model_dir of a run of the world's config with that student (exported); with `reuse`, a
    run an earlier call left (its export there) is kept."""
    runs = {}
    for name, student in STUDENTS.items():
        runs[name] = os.path.join(out, name)
        if reuse and os.path.exists(os.path.join(runs[name], "export", "student", "saved_model.pb")):
            continue
        common.run(os.path.join(world, "config.yaml"), runs[name], [f"train.steps={steps}", *student, *overrides])
    return runs


def restored(model_dir: str):
    """(config, distiller) of the run in `model_dir`, its weights from the latest checkpoint."""
    config = config_lib.load(os.path.join(model_dir, "config.yaml"))
    model = build_local_model(config)
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))\
        .expect_partial()
    return config, model


def stages(runs: dict[str, str]) -> dict[str, tuple]:
    """Stage name -> (call, input specs) of the breakdown: the encoder, each network's lookups, each network
    on ids, each whole serving function, all in-process `tf.function`s of the restored networks."""
    config, model = restored(runs["dagfm_inner"])
    teacher = config.teacher_specs[0]
    networks = {f"teacher/{teacher.name}": (config.view_features(teacher.features), model.teachers[teacher.name])}
    for name, model_dir in runs.items():
        student_config, student_model = (config, model) if name == "dagfm_inner" else restored(model_dir)
        networks[name] = (student_config.student_features, student_model.student)
    features = networks[f"teacher/{teacher.name}"][0]
    if any([f.name for f in feats] != [f.name for f in features] for feats, _ in networks.values()):
        raise SystemExit("the teacher and the students read different features: no shared encoder to time")
    encoder = FeatureEncoder(features)
    raw = serving_signature(features)
    ids = {spec.name: tf.TensorSpec([None], tf.int64, name=spec.name) for spec in features}
    out = {"encoder (shared)": (tf.function(encoder, input_signature=[raw]), raw)}
    for name, (feats, network) in networks.items():
        out[f"{name}: lookups"] = (tf.function(_lookups(network, name.startswith("teacher/")), input_signature=[ids]),
                                   ids)
        out[f"{name}: network on ids"] = (tf.function(_logits(network), input_signature=[ids]), ids)
        out[f"{name}: whole (in process)"] = (ServingNetwork(feats, network, name.replace("/", "_")).serve, raw)
    return out


def _lookups(network, concatenated: bool):
    """ids -> the embedding rows `network` reads: the concatenated vector (DCN-v2) or the field stack (DAGFM)."""
    def lookups(batch):
        fields = network.fields(batch)
        return fields.vector() if concatenated else fields.stack()
    return lookups


def _logits(network):
    def logits(batch):
        return network(batch, training=False)
    return logits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch_sizes", default="1,1024")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the runs an earlier call left in OUT (time again without training again)")
    args = parser.parse_args()
    batches = tuple(int(b) for b in args.batch_sizes.split(","))
    world = os.path.join(args.out, f"world-{args.seed}")
    if not os.path.exists(os.path.join(world, "config.yaml")):
        generate_interactions(world, rows=args.rows, seed=args.seed)
    runs = train_runs(args.out, world, args.steps, args.overrides, args.reuse)

    timing = {"batches": batches, "warmup": args.warmup, "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="dagfm_cost_") as directory:
        config, _ = restored(runs["dagfm_inner"])
        checkpoint = tf.train.latest_checkpoint(os.path.join(runs["dagfm_inner"], "checkpoints"))
        served = export_teachers(config, checkpoint, directory)
        served.update({name: load_export(os.path.join(model_dir, "export", "student"))
                       for name, model_dir in runs.items()})
        models = measure(served, **timing)
    teacher = next(name for name in models if name.startswith("teacher/"))
    print(f"{'model':<16} {'FLOPs/example':>14} {'params (other)':>15}"
          + "".join(f" {'ms/ex @' + str(b):>13}" for b in batches))
    for name, cost in models.items():
        print(f"{name:<16} {cost['flops']['per_example']:>14,} {cost['params']['other']:>15,}"
              + "".join(f" {cost['latency'][str(b)]['ms_per_example']:>13.5f}" for b in batches))
    ratio = {}
    for name in STUDENTS:
        pair = {"student": {"kind": "export", **models[name]}, teacher: {"kind": "teacher", **models[teacher]}}
        ratio[name] = ratios(pair)[f"{teacher} / student"]
        ratio[name].update({f"fastest_call_{b}": models[teacher]["latency"][str(b)]["min_ms_per_call"]
                            / models[name]["latency"][str(b)]["min_ms_per_call"] for b in batches})
        print(f"{teacher} / {name}: " + ", ".join(f"{k} {v:.3g}x" for k, v in ratio[name].items()))

    breakdown = latency(stages(runs), **timing)
    for rows in batches:
        print(f"where a batch of {rows} goes (ms per call: median (fastest); in-process tf.functions, side by side):")
        for name, by_batch in breakdown.items():
            timing = by_batch[str(rows)]
            print(f"  {name:<40} {timing['median_ms_per_call']:8.3f} (fastest {timing['min_ms_per_call']:.3f})")
    with open(os.path.join(args.out, "dagfm_cost.json"), "w") as f:
        json.dump({"seed": args.seed, "steps": args.steps, "overrides": args.overrides, "models": models,
                   "ratios": ratio, "breakdown": breakdown, "devices": [d.name for d in tf.config.list_logical_devices()]},
                  f, indent=1)


if __name__ == "__main__":
    main()
