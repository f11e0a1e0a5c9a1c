"""Is pfd_tf's baseline student as strong as a well-known peer's DNN on the same data?

    pip install -e ".[peer]"        # DeepCTR 0.9.4, an optional extra (never a pfd_tf dependency)
    python benchmarks/peer_baseline.py --out bench_out/peer_baseline
        [--seeds 0,1,2] [--scenarios cvr,ctr] [--rows 200000] [--set key=value ...]
        [--tune-seed 100] [--peer-epochs 1,2,3,4,6]

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
number of epochs is chosen per scenario on a separate validation world
(`--tune-seed`, not one of `--seeds`): one run there, scored after each
epoch of `--peer-epochs`, keeps the count with the best held-out AUC.
Both sides are scored by `pfd_tf.metrics` (exact AUC, log loss from logits).

Caveat for the CTR world: pfd_tf's students (two-tower and MLP alike)
encode the behaviour sequence by self-attention (`model.behaviour_items`);
DeepCTR's DNN mean-pools each sequence feature on its own.

It prints, per scenario, markdown tables of held-out AUC and log loss by
seed (mean ± sd over seeds) and pfd_tf - DeepCTR per seed, and writes
every run to `OUT/peer_baseline.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from types import SimpleNamespace

import numpy as np
from common import fmt, run

from pfd_tf import config as config_lib
from pfd_tf._keras import keras
from pfd_tf.config import Architecture, Config, FeatureKind, NumericEncoding
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.data.scenarios import SCENARIOS
from pfd_tf.features import vocabulary_size
from pfd_tf.metrics import exact_auc, logloss_from_logits

PEER = "DeepCTR DNN"
INSTALL_HINT = 'pip install -e ".[peer]"'
L2_REG_EMBEDDING = 1e-5  # DeepCTR's default for every model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("bench_out", "peer_baseline"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scenarios", default="cvr,ctr")
    parser.add_argument("--rows", type=int, default=None, help="world size; default: the scenario's")
    parser.add_argument("--set", action="append", default=[],
                        help="config override for every pfd_tf run; DeepCTR reads the same config")
    parser.add_argument("--tune-seed", type=int, default=100, help="the validation world that picks DeepCTR's epochs")
    parser.add_argument("--peer-epochs", default="1,2,3,4,6", help="DeepCTR epoch counts to choose from")
    args = parser.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    epoch_choices = sorted({int(e) for e in args.peer_epochs.split(",") if e})
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"--scenarios: unknown {unknown[0]!r} (choose from {', '.join(sorted(SCENARIOS))})")
    if not seeds or not scenarios or not epoch_choices:
        parser.error("--seeds, --scenarios and --peer-epochs each need at least one value")
    if min(epoch_choices) < 1:
        parser.error("--peer-epochs: counts must be at least 1")
    if args.tune_seed in seeds:
        parser.error(f"--tune-seed {args.tune_seed} is one of --seeds: "
                     "DeepCTR's epochs must be chosen on another world")
    peer = import_deepctr()  # before any training: a missing extra stops the run at once
    sized = {"rows": args.rows} if args.rows else {}
    os.makedirs(args.out, exist_ok=True)

    started = time.perf_counter()
    results, tuning, chosen = [], [], {}
    for scenario in scenarios:
        base = os.path.join(args.out, scenario)
        tune_dir = os.path.join(base, f"data-tune{args.tune_seed}")
        config_path = SCENARIOS[scenario](tune_dir, seed=args.tune_seed, **sized)
        scores = train_peer(peer, peer_config(config_path, args.set), args.tune_seed, epoch_choices)
        tuning += [{"scenario": scenario, "seed": args.tune_seed, "epochs": e, **m} for e, m in scores.items()]
        chosen[scenario] = max(scores, key=lambda e: scores[e]["auc"])
        print(f"{scenario}: {PEER} on the validation world (seed {args.tune_seed}), held-out AUC by epochs: "
              + ", ".join(f"{e}: {m['auc']:.4f}" for e, m in scores.items())
              + f"; chosen {chosen[scenario]}", flush=True)
        for seed in seeds:
            config_path = SCENARIOS[scenario](os.path.join(base, f"data-{seed}"), seed=seed, **sized)
            results += train_pfd_tf(config_path, scenario, seed, args.set, os.path.join(base, "runs"))
            epochs = chosen[scenario]
            metrics = train_peer(peer, peer_config(config_path, args.set), seed, [epochs])[epochs]
            results.append({"scenario": scenario, "seed": seed, "model": f"{PEER} ({epochs} epochs)",
                            "side": "deepctr", "epochs": epochs, **metrics})
            print(f"{scenario} seed {seed} {PEER}: AUC {metrics['auc']:.4f}  logloss {metrics['logloss']:.4f}  "
                  f"{metrics['train_seconds']:.1f}s", flush=True)

    report = os.path.join(args.out, "peer_baseline.json")
    with open(report, "w") as f:
        json.dump({"args": vars(args), "deepctr_version": peer.version, "peer_epochs": chosen,
                   "tuning": tuning, "results": results}, f, indent=2)
    for scenario in scenarios:
        print_tables(scenario, seeds, [r for r in results if r["scenario"] == scenario], args)
    print(f"\nwrote {report}; total wall time {time.perf_counter() - started:.0f}s")


# --------------------------------------------------------------------------
# DeepCTR, an optional extra
# --------------------------------------------------------------------------
def import_deepctr() -> SimpleNamespace:
    """DeepCTR's building blocks, or exit naming the extra to install.

    Imported here, not at the top: DeepCTR is the `peer` extra, never a
    dependency of pfd_tf.  `import pfd_tf` (above) has set TF_USE_LEGACY_KERAS,
    without which DeepCTR 0.9.4 does not import on TensorFlow 2.21.  (Its
    import also starts a thread that asks PyPI for a newer release; offline it
    prints "Please check the latest version manually".)
    """
    try:
        import deepctr
        from deepctr.feature_column import (SparseFeat, VarLenSparseFeat, build_input_features,
                                            input_from_feature_columns)
        from deepctr.layers.core import DNN, PredictionLayer
        from deepctr.layers.utils import combined_dnn_input
    except ImportError as err:
        sys.exit(f"benchmarks/peer_baseline.py needs DeepCTR 0.9.4 ({err}); install it with: {INSTALL_HINT}")
    return SimpleNamespace(
        version=deepctr.__version__, SparseFeat=SparseFeat, VarLenSparseFeat=VarLenSparseFeat,
        build_input_features=build_input_features, input_from_feature_columns=input_from_feature_columns,
        DNN=DNN, PredictionLayer=PredictionLayer, combined_dnn_input=combined_dnn_input,
    )


def peer_config(config_path: str, user_overrides) -> Config:
    """The config the peer reads: the world's, with the `--set` overrides pfd_tf's runs get (dims, tower, batch)."""
    return config_lib.load(config_path, ["distill.mode=baseline", *user_overrides])


def peer_columns(peer: SimpleNamespace, config: Config) -> list:
    """DeepCTR feature columns over the student's features, with pfd_tf's table sizes and dims."""
    columns = []
    for spec in config.student_features:
        if spec.kind is FeatureKind.NUMERIC and spec.encoding is NumericEncoding.VALUE:  # `encoding: value`: no ids to share (DeepCTR would take a DenseFeat)
            raise ValueError(f"feature {spec.name!r}: a numeric feature fed as its value; "
                             "this benchmark compares bucketized numeric features only")
        column = peer.SparseFeat(spec.name, vocabulary_size=vocabulary_size(spec), embedding_dim=spec.dim)
        if spec.kind is FeatureKind.SEQUENCE:
            # No length_name: DeepCTR's sequence embedding masks id 0 (mask_zero), pfd_tf's PAD_ID.
            column = peer.VarLenSparseFeat(column, maxlen=spec.max_len, combiner="mean")
        columns.append(column)
    return columns


def peer_dnn(peer: SimpleNamespace, columns, hidden_units) -> tuple[keras.Model, keras.Model, keras.layers.Layer]:
    """DeepCTR's DNN ranker: (model on probabilities, the same model's logit before the bias, its PredictionLayer).

    Built as DeepCTR 0.9.4's WDL and FNN build their deep part, with DeepCTR's
    defaults (seeds included).  The logit model shares every weight; exact AUC
    wants logits, which a float32 sigmoid would tie.
    """
    features = peer.build_input_features(columns)
    embeddings, dense = peer.input_from_feature_columns(features, columns, L2_REG_EMBEDDING, seed=1024)
    hidden = peer.DNN(tuple(hidden_units), seed=1024)(peer.combined_dnn_input(embeddings, dense))
    logit = keras.layers.Dense(1, use_bias=False)(hidden)
    prediction = peer.PredictionLayer("binary")
    inputs = list(features.values())
    return keras.Model(inputs, prediction(logit)), keras.Model(inputs, logit), prediction


def peer_inputs(config: Config, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
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
        labels.append(batch_labels.numpy())
    inputs = {}
    for name, chunks in parts.items():
        values = np.concatenate(chunks)
        inputs[name] = values.reshape(len(values), -1).astype(np.int32)  # [rows] -> [rows, 1]
    return inputs, np.concatenate(labels).astype(np.float32)


def train_peer(peer: SimpleNamespace, config: Config, seed: int, report_at) -> dict[int, dict]:
    """Trains DeepCTR's DNN on the config's train rows for max(report_at) epochs.

    Returns {epochs: {"auc", "logloss", "train_seconds", "train_rows", "eval_rows"}}
    on the held-out rows, after each epoch count in `report_at`.
    """
    train_x, train_y = peer_inputs(config, "train")
    eval_x, eval_y = peer_inputs(config, "eval")
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # fit's shuffling; DeepCTR seeds its own initializers
    model, logit_model, prediction = peer_dnn(peer, peer_columns(peer, config), config.model.student_tower)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    scores, seconds = {}, 0.0
    for epoch in range(1, max(report_at) + 1):
        started = time.perf_counter()
        model.fit(train_x, train_y, batch_size=config.train.batch_size, epochs=epoch, initial_epoch=epoch - 1,
                  shuffle=True, verbose=0)
        seconds += time.perf_counter() - started
        if epoch in report_at:
            logits = logit_model.predict(eval_x, batch_size=config.train.eval_batch_size, verbose=0).reshape(-1)
            logits = logits.astype(np.float64) + float(prediction.global_bias.numpy()[0])
            scores[epoch] = {"auc": exact_auc(eval_y, logits), "logloss": logloss_from_logits(eval_y, logits),
                             "train_seconds": seconds, "train_rows": len(train_y), "eval_rows": len(eval_y)}
    return scores


# --------------------------------------------------------------------------
# pfd_tf's side
# --------------------------------------------------------------------------
def train_pfd_tf(config_path: str, scenario: str, seed: int, user_overrides, runs_dir: str) -> list[dict]:
    """pfd_tf's baseline student with the world's config, and its MLP student when that is not already it."""
    overrides = ["distill.mode=baseline", f"train.seed={seed}"]
    variants = [overrides + list(user_overrides)]
    if config_lib.load(config_path, variants[0]).model.architecture is not Architecture.MLP:
        variants.append(overrides + ["model.architecture=mlp"] + list(user_overrides))
    rows = []
    for variant in variants:
        architecture = config_lib.load(config_path, variant).model.architecture.value
        metrics = run(config_path, os.path.join(runs_dir, f"baseline-{architecture}-seed{seed}"), variant)
        student = metrics["student"]
        rows.append({"scenario": scenario, "seed": seed, "model": f"pfd_tf baseline student ({architecture})",
                     "side": "pfd_tf", "architecture": architecture, "epochs": metrics["epochs"],
                     "auc": student["auc"], "logloss": student["logloss"],
                     "train_seconds": metrics["train_seconds"], "train_rows": metrics["train_rows"],
                     "eval_rows": metrics["eval_rows"]["rows"]})
        print(f"{scenario} seed {seed} {rows[-1]['model']}: AUC {student['auc']:.4f}  "
              f"logloss {student['logloss']:.4f}  {metrics['train_seconds']:.1f}s", flush=True)
    return rows


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def print_tables(scenario: str, seeds, rows, args) -> None:
    """AUC and log loss by model and seed, then pfd_tf - DeepCTR per seed."""
    models = list(dict.fromkeys(r["model"] for r in rows))  # pfd_tf rows first, as trained

    def values(model, key):
        by_seed = {r["seed"]: r[key] for r in rows if r["model"] == model}
        return [by_seed[s] for s in seeds]

    for key, title in (("auc", "held-out AUC"), ("logloss", "held-out log loss")):
        print(f"\n{scenario} ({args.rows or 'default'} rows, seeds {args.seeds}): {title}\n")
        print("| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd |")
        print("|---" * (len(seeds) + 2) + "|")
        for model in models:
            cells = values(model, key)
            print(f"| {model} | " + " | ".join(f"{v:.4f}" for v in cells) + f" | {fmt(cells)} |")
    peer = next(m for m in models if m.startswith(PEER))
    print()
    for model in (m for m in models if not m.startswith(PEER)):
        gaps = [a - b for a, b in zip(values(model, "auc"), values(peer, "auc"))]
        label = "pfd_tf - DeepCTR" + (f" ({model.split('(')[-1].rstrip(')')})" if len(models) > 2 else "")
        print(f"{label}, AUC per seed: {', '.join(f'{g:+.4f}' for g in gaps)}  (mean {statistics.mean(gaps):+.4f})")


if __name__ == "__main__":
    main()
