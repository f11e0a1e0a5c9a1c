"""Is pfd_tf's baseline student (and each zoo model) as strong as a well-known peer's on the same data?

    pip install -e ".[peer]"        # DeepCTR 0.9.4, an optional extra (never a pfd_tf dependency)
    python benchmarks/peer_baseline.py --out bench_out/peer_baseline
        [--seeds 0,1,2] [--scenarios cvr,ctr] [--rows 200000] [--set key=value ...]
        [--tune-seed 100] [--peer-epochs 1,2,3,4,6]
        [--models dnn,wide_deep,deepfm,dcn,xdeepfm,autoint,fibinet]
        [--rates adagrad:1.6,adam:0.001] [--pfd-epochs 1,2]

For each scenario and seed it generates the world (`pfd-data --scenario S
--seed N`), trains pfd_tf's baseline student with the world's config
(`distill.mode=baseline`, `train.seed=N`, then the `--set` overrides), and
reads its held-out AUC and log loss from metrics.json.  When the config's
student is not an MLP (the CTR world's two-tower student), pfd_tf's MLP
student (`model.architecture=mlp`) is trained too: DeepCTR's DNN is an MLP,
so that row is the like-for-like one.

The peer is DeepCTR 0.9.4's DNN ranker: embeddings -> DNN -> Dense(1) ->
PredictionLayer, the deep part of its WDL and FNN as those models build it
(0.9.4 has no model class for a plain DNN; `WDL` with no linear columns
adds a constant zero logit through a Lambda).  It reads the very ids
pfd_tf's student reads: the train and held-out rows go through pfd_tf's
input pipeline (`make_dataset_fn`, its `FeatureEncoder`), read once, and
only the student's features (`config.student_features`, never a privileged
one) are kept, one `SparseFeat` per categorical or bucketized numeric
feature (its table as big as pfd_tf's) and one mean-pooled
`VarLenSparseFeat` per sequence (DeepCTR masks id 0, pfd_tf's padding).
Everything else is DeepCTR's default (ReLU, no batch norm, embedding L2
1e-5, Adam at 0.001, binary cross entropy) but the hidden units
(`model.student_tower`) and the batch size (`train.batch_size`).  Its
number of epochs is chosen per scenario and model on a separate validation
world (`--tune-seed`, not one of `--seeds`): one run there, scored after
each epoch of `--peer-epochs`, keeps the count with the best held-out AUC.
Both sides are scored by `pfd_tf.metrics` (exact AUC, log loss from logits).

`--models`: besides `dnn` (the above), zoo models: pfd_tf trains the zoo
model as its baseline student (`student.model=M`; its sizes from the config
or `--set student.cin_layers=...`), DeepCTR its own model function of the
same name with those sizes (`peer_zoo.counterpart`, which says where the
two libraries compose a model differently).  `--rates` (each RATE, or
OPTIMIZER:RATE to change the optimizer too) and `--pfd-epochs` give pfd_tf
a grid chosen on the validation world too (one run per point, the best
held-out AUC wins if a second start of it, `train.seed` + 1 on the same
world, does not diverge; a point that diverges loses; default: the
config's optimizer, rate and epochs, no choice).  Every result is appended
to `OUT/runs.jsonl` as it is measured; a run started again with the same
arguments skips what is there (and the worlds already generated), so a long
comparison can be interrupted.  After the per-model tables, one parity table
gives pfd_tf's AUC, DeepCTR's and their difference per world and mean.

Caveat for the CTR world: pfd_tf's students (two-tower and MLP alike)
encode the behaviour sequence by self-attention (`model.behaviour_items`);
DeepCTR's DNN mean-pools each sequence feature on its own.

It prints, per scenario and model, markdown tables of held-out AUC and
log loss by seed (mean ± sd over seeds) and pfd_tf - DeepCTR per seed, and
writes every run (and the validation-world choices) to
`OUT/peer_baseline.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from types import SimpleNamespace

import numpy as np
from peer_pfd import choose_pfd_tf, rate_overrides, train_pfd_tf
from peer_tables import Done, print_parity, print_tables
from peer_zoo import MODELS, NAMES, counterpart, import_deepctr, logit_model, peer_columns, peer_dnn

from pfd_tf import config as config_lib
from pfd_tf._keras import keras
from pfd_tf.config import Config
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.datasets.scenarios import SCENARIOS
from pfd_tf.metrics import exact_auc, logloss_from_logits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("bench_out", "peer_baseline"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scenarios", default="cvr,ctr")
    parser.add_argument("--models", default="dnn",
                        help=f"comma-separated: dnn (the baseline student) and zoo models ({', '.join(MODELS)})")
    parser.add_argument("--rows", type=int, default=None, help="world size; default: the scenario's")
    parser.add_argument("--set", action="append", default=[],
                        help="config override for every pfd_tf run; DeepCTR reads the same config")
    parser.add_argument("--tune-seed", type=int, default=100, help="the validation world that picks DeepCTR's epochs")
    parser.add_argument("--peer-epochs", default="1,2,3,4,6", help="DeepCTR epoch counts to choose from")
    parser.add_argument("--rates", default="", help="pfd_tf learning rates to choose from on the validation world, "
                        "each RATE or OPTIMIZER:RATE (e.g. adagrad:1.6,adam:0.001; default: the config's)")
    parser.add_argument("--peer-tables", choices=("shared", "independent"), default="shared",
                        help="DeepCTR's tables: shared, its default (every table from seed 2020: row k of every "
                        "table starts the same), or independent (table i from seed 2020 + i)")
    parser.add_argument("--pfd-epochs", default="", help="pfd_tf epoch counts to choose from on the validation "
                        "world (default: the config's)")
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    epoch_choices = sorted({int(e) for e in args.peer_epochs.split(",") if e})
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"--scenarios: unknown {unknown[0]!r} (choose from {', '.join(sorted(SCENARIOS))})")
    unknown = [m for m in models if m != "dnn" and m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown[0]!r} (choose from dnn, {', '.join(MODELS)})")
    if not seeds or not scenarios or not epoch_choices or not models:
        parser.error("--seeds, --scenarios, --models and --peer-epochs each need at least one value")
    if min(epoch_choices) < 1:
        parser.error("--peer-epochs: counts must be at least 1")
    if args.tune_seed in seeds:
        parser.error(f"--tune-seed {args.tune_seed} is one of --seeds: "
                     "DeepCTR's epochs must be chosen on another world")
    grid = [rate_overrides(r) + [f"train.epochs={e}"] * bool(e)
            for r in args.rates.split(",") for e in args.pfd_epochs.split(",")]
    peer = import_deepctr()  # before any training: a missing extra stops the run at once
    sized = {"rows": args.rows} if args.rows else {}
    os.makedirs(args.out, exist_ok=True)
    done = Done(os.path.join(args.out, "runs.jsonl"))  # what an interrupted run already measured
    prefix = json.dumps([args.rows, args.set])  # results of other sizes or overrides are not these
    independent = args.peer_tables == "independent"
    side = "deepctr" + "-independent-tables" * independent  # DeepCTR's runs of the other start are not these

    started = time.perf_counter()
    results, tuning, chosen = [], [], {}
    for scenario in scenarios:
        base = os.path.join(args.out, scenario)
        tune_path = world(scenario, os.path.join(base, f"data-tune{args.tune_seed}"), args.tune_seed, sized)
        paths = {seed: world(scenario, os.path.join(base, f"data-{seed}"), seed, sized) for seed in seeds}
        for model in models:
            overrides = list(args.set) + ([f"student.model={model}"] if model != "dnn" else [])
            pick = choose_pfd_tf(done, prefix, tune_path, scenario, model, overrides, grid,
                                 os.path.join(base, "tune"), args.tune_seed, tuning)
            scores = done.get(f"{prefix}|{scenario}|{model}|{side}|{args.tune_seed}|{args.peer_epochs}", lambda: {
                str(e): m for e, m in train_peer(peer, peer_config(tune_path, overrides), args.tune_seed,
                                                 epoch_choices, model, independent).items()})
            tuning += [{"scenario": scenario, "zoo": model, "side": "deepctr", "seed": args.tune_seed,
                        "epochs": int(e), **m} for e, m in scores.items()]
            epochs = int(max(scores, key=lambda e: scores[e]["auc"]))
            chosen.setdefault(scenario, {})[model] = {"deepctr_epochs": epochs, "pfd_tf": pick}
            print(f"{scenario} {model}: {peer_name(model)} on the validation world (seed {args.tune_seed}), held-out "
                  "AUC by epochs: " + ", ".join(f"{e}: {m['auc']:.4f}" for e, m in scores.items())
                  + f"; chosen {epochs}; pfd_tf: {' '.join(pick) or 'the config'}", flush=True)
            for seed in seeds:
                results += done.get(f"{prefix}|{scenario}|{model}|pfd_tf|{seed}|{' '.join(pick)}", lambda: train_pfd_tf(
                    paths[seed], scenario, seed, overrides + pick, os.path.join(base, "runs", model), model,
                    scored_if_diverged=True))
                metrics = done.get(f"{prefix}|{scenario}|{model}|{side}|{seed}|{epochs}", lambda: train_peer(
                    peer, peer_config(paths[seed], overrides), seed, [epochs], model, independent)[epochs])
                name = f"{peer_name(model, independent)} ({epochs} epochs)"
                results.append({"scenario": scenario, "seed": seed, "model": name,
                                "zoo": model, "side": "deepctr", "epochs": epochs, **metrics})
                print(f"{scenario} seed {seed} {results[-1]['model']}: AUC {metrics['auc']:.4f}  "
                      f"logloss {metrics['logloss']:.4f}  {metrics['train_seconds']:.1f}s", flush=True)

    report = os.path.join(args.out, "peer_baseline.json")
    with open(report, "w") as f:
        json.dump({"args": vars(args), "deepctr_version": peer.version, "chosen": chosen,
                   "tuning": tuning, "results": results}, f, indent=2)
    for scenario in scenarios:
        for model in models:
            print_tables(scenario, seeds, [r for r in results if r["scenario"] == scenario and r["zoo"] == model],
                         args)
    print_parity(seeds, results, models, args)
    print(f"\nwrote {report}; total wall time {time.perf_counter() - started:.0f}s")


def peer_name(model: str, independent_tables: bool = False) -> str:
    return f"DeepCTR {NAMES[model]}" + " (independent tables)" * independent_tables


def world(scenario: str, directory: str, seed: int, sized: dict) -> str:
    """The world's config.yaml, generated unless an earlier (interrupted) run left it."""
    path = os.path.join(directory, "config.yaml")
    return path if os.path.exists(path) else SCENARIOS[scenario](directory, seed=seed, **sized)


# --------------------------------------------------------------------------
# DeepCTR's side
# --------------------------------------------------------------------------
def peer_config(config_path: str, user_overrides) -> Config:
    """The config the peer reads: the world's, with the `--set` overrides pfd_tf's runs get (dims, tower, batch)."""
    return config_lib.load(config_path, ["distill.mode=baseline", *user_overrides])


def peer_inputs(config: Config, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    key = (tuple(config.resolve_path(p) for p in getattr(config.data, f"{split}_files")), split)
    if key not in _READ:  # several models read the same world
        _READ.clear() if len(_READ) > 3 else None
        _READ[key] = _read_inputs(config, split)
    return _READ[key]


_READ: dict = {}


def _read_inputs(config: Config, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The student's ids of every row of `split` ("train" or "eval"), as DeepCTR takes them.

    The rows go through pfd_tf's own input pipeline (parse, then
    `FeatureEncoder`), so the ids are those pfd_tf's student sees; they are
    read once, in the order pfd_tf's evaluation reads files (a few
    interleaved; `fit` shuffles the training rows anyway).  Returns
    ({feature: int32 [rows, 1] or [rows, max_len]}, float32 labels [rows]).
    """
    dataset_fn = make_dataset_fn(config, split, config.train.eval_batch_size, training=False)
    names = [spec.name for spec in config.student_features]
    parts, labels = {name: [] for name in names}, []
    for ids, batch_labels in dataset_fn(None):
        for name in names:
            parts[name].append(ids[name].numpy())
        labels.append(batch_labels[config.task_specs[0].name].numpy())  # the served task's
    inputs = {}
    for name, chunks in parts.items():
        values = np.concatenate(chunks)
        inputs[name] = values.reshape(len(values), -1).astype(np.int32)  # [rows] -> [rows, 1]
    return inputs, np.concatenate(labels).astype(np.float32)


def train_peer(peer: SimpleNamespace, config: Config, seed: int, report_at, model_kind: str = "dnn",
               independent_tables: bool = False) -> dict[int, dict]:
    """Trains DeepCTR's DNN (or the counterpart of zoo model `model_kind`) on the config's train rows for
    max(report_at) epochs (`independent_tables`: `peer_zoo.peer_columns`).

    Returns {epochs: {"auc", "logloss", "train_seconds", "train_rows", "eval_rows"}}
    on the held-out rows, after each epoch count in `report_at`.
    """
    train_x, train_y = peer_inputs(config, "train")
    eval_x, eval_y = peer_inputs(config, "eval")
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # fit's shuffling; DeepCTR seeds its own initializers
    columns = peer_columns(peer, config, independent_tables)
    tower = config.student.tower or config.model.student_tower
    if model_kind == "dnn":
        model, logits_of, prediction = peer_dnn(peer, columns, tower)
    else:
        model = counterpart(model_kind, columns, config.student, tower)
        logits_of, prediction = logit_model(model)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    scores, seconds = {}, 0.0
    for epoch in range(1, max(report_at) + 1):
        started = time.perf_counter()
        model.fit(train_x, train_y, batch_size=config.train.batch_size, epochs=epoch, initial_epoch=epoch - 1,
                  shuffle=True, verbose=0)
        seconds += time.perf_counter() - started
        if epoch in report_at:
            logits = logits_of.predict(eval_x, batch_size=config.train.eval_batch_size, verbose=0).reshape(-1)
            logits = logits.astype(np.float64) + float(prediction.global_bias.numpy()[0])
            scores[epoch] = {"auc": exact_auc(eval_y, logits), "logloss": logloss_from_logits(eval_y, logits),
                             "train_seconds": seconds, "train_rows": len(train_y), "eval_rows": len(eval_y)}
    return scores


if __name__ == "__main__":
    main()
