"""Wires config, strategy, data and callbacks around the Distiller; `fit` does the looping.

The same `train` runs single-machine (default strategy) and on the chief of a
parameter-server cluster (ParameterServerStrategy, whose ClusterCoordinator
`fit` drives).  It leaves in `model_dir`:
- `config.yaml`: the resolved config (data paths absolute);
- `checkpoints/`: `tf.train.Checkpoint(model=distiller)` every `train.log_every`
  steps (a "Keras epoch"); a run started again on the same `model_dir`
  resumes from the latest, at its `optimizer.iterations`;
- `logs/`: TensorBoard summaries;
- `export/student/`: the student SavedModel (not for `distill.teacher_only`,
  whose student is never trained);
- `metrics.json`: held-out AUC and log loss of student and teacher (exact, see
  `pfd_tf.evaluation`), steps and speed.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import Config
from pfd_tf.cluster import table_partitioning
from pfd_tf.data.pipeline import DataError, diagnose, make_dataset_fn
from pfd_tf.evaluation import Evaluator
from pfd_tf.export_two_tower import export_all
from pfd_tf.models.build import build_distiller
from pfd_tf.models.distiller import Distiller
from pfd_tf.optim import make_optimizer


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Saves the CheckpointManager's checkpoint at the end of each Keras epoch."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=self.model.optimizer.iterations)


def load_teacher(model: Distiller, checkpoint_path: str) -> None:
    """Ind&Async: restores a pre-trained teacher (from another run's checkpoint) and freezes it."""
    holder = tf.Module()
    holder.teacher = model.teacher
    status = tf.train.Checkpoint(model=holder).read(checkpoint_path)
    status.expect_partial().assert_existing_objects_matched()
    model.teacher.trainable = False


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each Keras epoch; the first one includes tracing the step function."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 4))


def fit_plan(start_step: int, steps: int, log_every: int) -> list[tuple[int, int, int]]:
    """`(initial_epoch, epochs, steps_per_epoch)` for each `fit` call that trains
    from `start_step` to exactly `steps`: epochs of `log_every` steps, then one
    shorter epoch for the remainder.  Checkpoints fall on epoch ends, so a
    resumed run starts on an epoch boundary.
    """
    full = steps // log_every
    plan = []
    if start_step < full * log_every:
        plan.append((start_step // log_every, full, log_every))
    if steps % log_every and start_step < steps:
        plan.append((full, full + 1, steps % log_every))
    return plan


# Steps a worker runs per closure of the coordinator under ParameterServerStrategy (one
# round trip each): measured by benchmarks/cluster_throughput.py --steps-per-execution.
CLUSTER_STEPS_PER_EXECUTION = 8


def is_cluster(strategy: tf.distribute.Strategy | None) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def steps_per_execution(config: Config, strategy: tf.distribute.Strategy | None) -> int:
    if config.train.steps_per_execution:
        return config.train.steps_per_execution
    return CLUSTER_STEPS_PER_EXECUTION if is_cluster(strategy) else 1


def build_and_compile(config: Config, strategy: tf.distribute.Strategy) -> Distiller:
    """The distiller with its variables (and the optimizer's slots) placed by `strategy`."""
    with strategy.scope(), table_partitioning():
        model = build_distiller(config)
        if config.distill.teacher_checkpoint:
            load_teacher(model, config.resolve_path(config.distill.teacher_checkpoint))
        # Compiled after freezing: Keras fixes the trainable set when it compiles.
        model.compile(optimizer=make_optimizer(config.train), steps_per_execution=steps_per_execution(config, strategy))
        model.optimizer.build(model.trainable_variables)
    return model


def _fit_or_explain(run, config: Config, files) -> Any:
    """Runs `run()`; turns TensorFlow's anonymous parse errors into a DataError naming file and line."""
    try:
        return run()
    except tf.errors.InvalidArgumentError as err:
        where = diagnose(config, files)
        if where:
            raise DataError(where) from err
        raise


def train(
    config: Config,
    model_dir: str,
    strategy: tf.distribute.Strategy | None = None,
    verbose: int = 2,
    data_service: str | None = None,
) -> dict:
    """Trains teacher and student as the config says; returns what metrics.json holds.

    Under ParameterServerStrategy, `data_service` is the address of the tf.data
    service's dispatcher that feeds the workers (`pfd_tf.data.service`).
    """
    if is_cluster(strategy) and not data_service:
        raise ValueError("training under ParameterServerStrategy needs the tf.data service: pass data_service")
    os.makedirs(model_dir, exist_ok=True)
    config_lib.save(config, os.path.join(model_dir, "config.yaml"))
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.train.seed)

    # Built now so that a bad file stops the run before training, not after.
    local_train_fn = make_dataset_fn(config, "train", config.train.batch_size, training=True)
    eval_fn = make_dataset_fn(config, "eval", config.train.eval_batch_size, training=False)

    model = build_and_compile(config, strategy)

    checkpoint = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "checkpoints"), max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    start_step = int(model.optimizer.iterations.numpy())
    if start_step:
        print(f"resumed from {manager.latest_checkpoint} at step {start_step} "
              f"(lambda {float(model.current_lambda()):g})", flush=True)

    timer = EpochTimer()
    callbacks = [
        timer,
        CheckpointEveryEpoch(manager),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), update_freq="epoch"),
    ]
    started = time.perf_counter()
    # Each `fit` call reads on where the last step left off.  One machine: the stream from the
    # model's current step (pfd_tf.data.stream).  A cluster: one tf.data service job for the
    # chief's lifetime, from the step it started at; later `fit` calls join the job and read on.
    cluster_train_fn = data_service and make_dataset_fn(
        config, "train", config.train.batch_size, training=True, start_step=start_step, data_service=data_service)
    for initial_epoch, epochs, steps_per_epoch in fit_plan(start_step, config.train.steps, config.train.log_every):
        train_fn = cluster_train_fn or local_train_fn.starting_at(int(model.optimizer.iterations.numpy()))
        _fit_or_explain(
            lambda: model.fit(
                _as_input(strategy, train_fn),
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
                verbose=verbose,
            ),
            config,
            train_fn.files,
        )
    train_seconds = time.perf_counter() - started
    trained_steps = int(model.optimizer.iterations.numpy()) - start_step

    evaluator = Evaluator(config)
    results = _fit_or_explain(lambda: evaluator(manager.latest_checkpoint), config, eval_fn.files)
    if model.train_student:
        export_all(config, manager.latest_checkpoint, os.path.join(model_dir, "export"))
    else:
        print(f"teacher pre-trained; distil from it (Ind&Async) with --set "
              f"distill.teacher_checkpoint={os.path.abspath(manager.latest_checkpoint)}", flush=True)

    def held_out(who):
        if f"{who}_auc" not in results:
            return None
        return {"auc": float(results[f"{who}_auc"]), "logloss": float(results[f"{who}_logloss"])}

    examples = trained_steps * config.train.batch_size
    metrics = {
        "mode": config.distill.mode.value,
        "student": held_out("student"),
        "teacher": held_out("teacher"),
        "steps": int(model.optimizer.iterations.numpy()),
        "examples": examples,
        "train_seconds": round(train_seconds, 3),
        "examples_per_second": round(examples / train_seconds, 1) if train_seconds > 0 else 0.0,
        "epoch_seconds": timer.seconds,
        "eval": results,
        "checkpoint": manager.latest_checkpoint,
    }
    if model.visits is not None:
        metrics["visits"] = visit_summary(config.train.count_visits, model.visits.numpy())
    with open(os.path.join(model_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def visit_summary(feature: str, visits) -> dict:
    """How many ids of `feature` the run trained on 0, 1, 2, ... times (train.count_visits)."""
    counts = {int(k): int(v) for k, v in enumerate(np.bincount(visits)) if v}
    return {"feature": feature, "ids": int(len(visits)), "ids_by_count": counts}


def _as_input(strategy: tf.distribute.Strategy, dataset_fn):
    """What `fit`/`evaluate` take: a DatasetCreator under ParameterServerStrategy, else the dataset."""
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        return keras.utils.experimental.DatasetCreator(dataset_fn)
    return dataset_fn(None)
