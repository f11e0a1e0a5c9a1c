"""The evaluator task: evaluates each new checkpoint of a run on the held-out data.

It runs beside the chief (TF_CONFIG role `evaluator`), never slows training,
and evaluates exactly (every held-out row once, the Distiller's own loss
terms: teacher, student and distillation loss, and rank-based AUCs; see
`pfd_tf.evaluation`).  For each checkpoint it writes TensorBoard summaries to
`model_dir/logs/sidecar` and appends one JSON line to
`model_dir/sidecar_metrics.jsonl`; it stops after the checkpoint of the last
training step.  It evaluates only the run its config describes (it waits
until `model_dir/config.yaml` is that run's), and each checkpoint once, with
the run's `feature_stats.json` (the normalization of value features).
"""
from __future__ import annotations

import json
import os
import time

from pfd_tf._keras import tf
from pfd_tf import config as config_lib, run_dir
from pfd_tf.config import Config
from pfd_tf.evaluation import Evaluator

METRICS_FILE = "sidecar_metrics.jsonl"


def _evaluated(model_dir: str) -> set[str]:
    """Checkpoints already evaluated (a restarted evaluator, or a finished run started again)."""
    try:
        with open(os.path.join(model_dir, METRICS_FILE), encoding="utf-8") as f:
            return {json.loads(line).get("checkpoint") for line in f if line.strip()}
    except (OSError, ValueError):
        return set()


def _wait_for_the_run(config: Config, model_dir: str, overwrite: bool, poll_seconds: float) -> None:
    """Waits until `model_dir` holds this config's run (the chief refuses any other, or, with
    --overwrite, removes it and writes this config): never evaluates another run's checkpoints."""
    saved, lock = os.path.join(model_dir, "config.yaml"), os.path.join(model_dir, run_dir.LOCK)
    while True:
        try:
            old = run_dir.saved_config(model_dir)
            # --overwrite: the config written after the chief took the lock, not the removed run's.
            fresh = not overwrite or os.path.getmtime(saved) >= os.path.getmtime(lock)
        except (OSError, run_dir.RunDirError):
            old, fresh = None, False
        if old is not None and fresh and not run_dir.trained_differences(old, config):
            return
        time.sleep(poll_seconds)


def run_sidecar(config: Config, model_dir: str, poll_seconds: float = 2.0, timeout: float | None = None,
                overwrite: bool = False) -> list[dict]:
    """Evaluates checkpoints as they appear until the final one; returns every result."""
    from pfd_tf.data import feature_stats
    from pfd_tf.data.pipeline import count_training_rows

    _wait_for_the_run(config, model_dir, overwrite, poll_seconds)
    # The chief writes the run's feature statistics before its config.yaml.
    config = feature_stats.resolve(config_lib.resolve_length(config, count_training_rows(config)), model_dir)
    evaluator = Evaluator(config)
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    os.makedirs(checkpoint_dir, exist_ok=True)
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs", "sidecar"))
    results = []
    for path in tf.train.checkpoints_iterator(checkpoint_dir, min_interval_secs=poll_seconds, timeout=timeout):
        if path in _evaluated(model_dir):
            if int(path.rsplit("-", 1)[1]) >= config.train.steps:
                break  # the run's final checkpoint, evaluated before
            continue
        try:
            metrics = evaluator(path)
        except (tf.errors.NotFoundError, tf.errors.DataLossError):
            continue  # the chief's CheckpointManager removed it meanwhile; a newer one follows
        metrics["checkpoint"] = path
        with writer.as_default(step=metrics["step"]):
            for name, value in metrics.items():
                if isinstance(value, float):
                    tf.summary.scalar(name, value)
        writer.flush()
        with open(os.path.join(model_dir, METRICS_FILE), "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        aucs = [f"{key[:-len('_auc')]} AUC {value:.4f}" for key, value in metrics.items() if key.endswith("_auc")]
        print(f"evaluator: step {metrics['step']}: {', '.join(aucs)}", flush=True)
        results.append(metrics)
        if metrics["step"] >= config.train.steps:
            break
    return results
