"""The evaluator task: evaluates each new checkpoint of a run on the held-out data.

It runs beside the chief (TF_CONFIG role `evaluator`), never slows training,
and evaluates exactly (every held-out row once, the Distiller's own loss
terms: teacher, student and distillation loss, and rank-based AUCs; see
`pfd_tf.evaluation`).  For each checkpoint it writes TensorBoard summaries to
`model_dir/logs/sidecar` and appends one JSON line to
`model_dir/sidecar_metrics.jsonl`; it stops after the checkpoint of the last
training step.
"""
from __future__ import annotations

import json
import os

from pfd_tf._keras import tf
from pfd_tf.config import Config
from pfd_tf.evaluation import Evaluator

METRICS_FILE = "sidecar_metrics.jsonl"


def run_sidecar(config: Config, model_dir: str, poll_seconds: float = 2.0, timeout: float | None = None) -> list[dict]:
    """Evaluates checkpoints as they appear until the final one; returns every result."""
    evaluator = Evaluator(config)
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    os.makedirs(checkpoint_dir, exist_ok=True)
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs", "sidecar"))
    results = []
    for path in tf.train.checkpoints_iterator(checkpoint_dir, min_interval_secs=poll_seconds, timeout=timeout):
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
        aucs = [f"{who} AUC {metrics[f'{who}_auc']:.4f}" for who in ("student", "teacher") if f"{who}_auc" in metrics]
        print(f"evaluator: step {metrics['step']}: {', '.join(aucs)}", flush=True)
        results.append(metrics)
        if metrics["step"] >= config.train.steps:
            break
    return results
