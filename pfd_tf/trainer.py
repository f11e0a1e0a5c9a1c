"""Wires config, strategy, data and callbacks around the Distiller; `fit` does the looping.

The same `train` runs single-machine (default strategy) and on the chief of a
parameter-server cluster (ParameterServerStrategy, whose ClusterCoordinator
`fit` drives).  It leaves in `model_dir`:
- `config.yaml`: the run's config as given (data paths absolute): its identity
  (`pfd_tf.run_dir`); `resumes.jsonl`: what each resume changed;
- `feature_stats.json`: the mean and std of the numeric features fed as
  values whose config leaves them unset, from one pass over the training
  files (`pfd_tf.data.feature_stats`); the run trains on the config
  resolved with them;
- `checkpoints/`: `tf.train.Checkpoint(model=distiller)` every `train.log_every`
  steps (a "Keras epoch"), numbered by step; a run started again on the same
  `model_dir` with the same config resumes from the latest;
- `logs/`: TensorBoard summaries;
- `export/student/`: the student SavedModel (not for `distill.teacher_only`,
  whose student is never trained);
- `metrics.json`: held-out AUC and log loss of the student and of each teacher
  by name, and of their ensemble (exact, see
  `pfd_tf.evaluation`; no AUC when the held-out rows hold one class), the
  run's length in steps and epochs, speed.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any, Callable

import numpy as np

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import Config
from pfd_tf.cluster import table_partitioning
from pfd_tf import early_stopping, run_dir
from pfd_tf.callbacks import CheckpointEveryEpoch, EpochTimer, Progress, StopOnNonFiniteLoss
from pfd_tf.data import feature_stats, vocab
from pfd_tf.data.pipeline import (DataError, check_eval_split, diagnose, make_dataset_fn,
                                  training_rows_per_file)
from pfd_tf.evaluation import Evaluator
from pfd_tf.export_two_tower import export_all
from pfd_tf.models.build import build_distiller
from pfd_tf.distill.pretrained import check_checkpoints, load_teacher
from pfd_tf.models.distiller import Distiller
from pfd_tf.models.towers import recalibrate_batch_norm
from pfd_tf.optim import make_optimizer


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
        for teacher in config.teacher_specs:
            if teacher.checkpoint:
                load_teacher(model, teacher.name, config.resolve_path(teacher.checkpoint))
        # Compiled after freezing: Keras fixes the trainable set when it compiles.
        model.compile(optimizer=make_optimizer(config.train), steps_per_execution=steps_per_execution(config, strategy))
        model.optimizer.build(model.trainable_variables)
    return model


def _fit_or_explain(run, config: Config, files) -> Any:
    """Runs `run()`; turns TensorFlow's anonymous data errors into a DataError naming file and line (or record)."""
    try:
        return run()
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
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
    overwrite: bool = False,
    start_cluster: Callable[[Config], tuple[tf.distribute.Strategy, str]] | None = None,
    export: bool = True,
) -> dict:
    """Trains teacher and student as the config says; returns what metrics.json holds.

    Under ParameterServerStrategy, `data_service` is the address of the tf.data
    service's dispatcher that feeds the workers (`pfd_tf.data.service`);
    or `start_cluster(config) -> (strategy, data_service)` starts them once
    the checks below have passed (the chief of `pfd-train`).
    Everything that can be checked before training is (`pfd_tf.run_dir`: the
    model_dir's run and lock; the data: every training file opened, the
    held-out files read through once) before anything is written into
    `model_dir`; `overwrite` removes a previous run there first.  A run
    that already finished is left alone: its metrics.json is returned.
    `export=False` skips the student's SavedModel (pfd-compare's rate-choosing runs).
    """
    if is_cluster(strategy) and not data_service:
        raise ValueError("training under ParameterServerStrategy needs the tf.data service: pass data_service")
    model_dir = os.path.abspath(model_dir)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as err:
        raise run_dir.RunDirError(f"{model_dir}: cannot create the model_dir ({err.strerror})") from None
    with run_dir.RunLock(model_dir):
        changed = {} if overwrite else run_dir.check_resume(model_dir, config)
        check_checkpoints(config)  # the pre-trained teachers' runs
        trained = early_stopping.with_validation_merged(config)  # train.merge_validation: trains on them too
        train_counts = training_rows_per_file(trained)
        train_rows = sum(train_counts)
        held_out = check_eval_split(config)
        if not held_out["positives"] or not held_out["negatives"]:
            print(f"warning: the held-out files ({', '.join(held_out['files'])}) hold one class only "
                  f"({held_out['positives']} positives, {held_out['negatives']} negatives): AUC is undefined "
                  "and will not be reported", file=sys.stderr, flush=True)
        resolved = config_lib.resolve_length(trained, train_rows)
        latest_step = None if overwrite else checkpoint_step(model_dir)
        if latest_step is not None and latest_step > resolved.train.steps:
            raise run_dir.RunDirError(
                f"{model_dir}: the run is at step {latest_step}, past the {resolved.train.steps} steps the config "
                "asks for (train.steps / train.epochs); raise them to resume, or pass --overwrite")
        finished = run_dir.finished_message(model_dir, resolved.train.steps, latest_step)
        record = None if overwrite else early_stopping.read_record(model_dir)
        if not finished and record and record.get("finished") and os.path.exists(os.path.join(model_dir, "metrics.json")):
            finished = f"{model_dir}: this run finished (early stopping: its best checkpoint is step " \
                       f"{record['best_step']}); its results are in {os.path.join(model_dir, 'metrics.json')}. " \
                       "Pass --overwrite to train it again."
        if finished:
            print(finished, flush=True)
            with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
                return json.load(f)
        resuming = not overwrite and os.path.exists(os.path.join(model_dir, "config.yaml"))
        stats = feature_stats.for_run(config, model_dir, resume=resuming)
        vocabularies = vocab.for_run(config, model_dir, resume=resuming)  # counted (min_count) or read, not written
        resolved = config_lib.with_feature_stats(resolved, stats)
        if overwrite and run_dir.remove_run(model_dir):
            print(f"--overwrite: removed the previous run in {model_dir}", flush=True)
        if stats:  # before config.yaml: the sidecar, once it sees this run's config, finds them
            feature_stats.write(model_dir, stats)
        resolved = vocab.install(resolved, model_dir, vocabularies)  # model_dir/vocabularies, the run's copies
        config_lib.save(config, os.path.join(model_dir, "config.yaml"))
        if changed:
            run_dir.record_resume(model_dir, latest_step or 0, changed)
        if start_cluster is not None:
            # The checks' datasets (and their functions) go before the cluster is connected; collected
            # later, each would ask every ps and worker to remove functions they never had (gRPC errors).
            gc.collect()
            strategy, data_service = start_cluster(resolved)
        return _train(resolved, model_dir, strategy or tf.distribute.get_strategy(), verbose, data_service,
                      train_counts, held_out, export)


def checkpoint_step(model_dir: str) -> int | None:
    """The step of the latest checkpoint in `model_dir` (checkpoints are numbered by step), or None."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else None


def _train(config: Config, model_dir: str, strategy, verbose: int, data_service: str | None,
           train_counts: list[int], held_out: dict, export: bool = True) -> dict:
    """The run itself, on a config whose length is resolved in steps (`config.resolve_length`)."""
    keras.utils.set_random_seed(config.train.seed)
    train_rows = sum(train_counts)
    local_train_fn = make_dataset_fn(config, "train", config.train.batch_size, training=True,
                                     rows_per_file=train_counts)

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
        StopOnNonFiniteLoss(manager),  # before the checkpoint: diverged weights are never saved
        CheckpointEveryEpoch(manager),
        timer,
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), update_freq="epoch"),
    ]
    stopping = None
    if config.train.early_stopping is not config_lib.EarlyStopping.NONE:  # after the checkpoint it scores
        stopping = early_stopping.ValidationStopping(
            config, manager, model_dir, Evaluator(early_stopping.validation_config(config)))
        callbacks.insert(2, stopping)
    if verbose:
        callbacks.append(Progress(config.train.steps, config.train.batch_size, train_rows))
    started = time.perf_counter()
    # Each `fit` call reads on where the last step left off.  One machine: the stream from the
    # model's current step (pfd_tf.data.stream).  A cluster: one tf.data service job for the
    # chief's lifetime, from the step it started at; later `fit` calls join the job and read on.
    plan = fit_plan(start_step, config.train.steps, config.train.log_every)
    cluster_train_fn = data_service and make_dataset_fn(
        config, "train", config.train.batch_size, training=True, start_step=start_step, data_service=data_service,
        rows_per_file=train_counts, fit_ends=[epochs * config.train.log_every for _, epochs, _ in plan[:-1]])
    for initial_epoch, epochs, steps_per_epoch in plan:
        if stopping is not None and stopping.record["stopped"]:
            break
        train_fn = cluster_train_fn or local_train_fn.starting_at(int(model.optimizer.iterations.numpy()))
        _fit_or_explain(
            lambda: model.fit(
                _as_input(strategy, train_fn),
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
                verbose=0,  # the Progress callback prints steps and epochs as they are
            ),
            config,
            train_fn.files,
        )
    train_seconds = time.perf_counter() - started
    final_step = int(model.optimizer.iterations.numpy())
    trained_steps = final_step - start_step
    best = early_stopping.best_checkpoint(model_dir) if stopping is not None else None
    if best and int(best.rsplit("-", 1)[1]) != final_step:
        checkpoint.restore(best).expect_partial()  # the run's result is its best checkpoint
        manager.save(checkpoint_number=int(model.optimizer.iterations.numpy()))
    if trained_steps and recalibrate_batch_norm(model, local_train_fn.starting_at(0)()):
        # The final checkpoint (what evaluation and export read) gets the statistics of the final weights.
        manager.save(checkpoint_number=int(model.optimizer.iterations.numpy()))

    evaluator = Evaluator(config)
    results = _fit_or_explain(lambda: evaluator(manager.latest_checkpoint), config, evaluator.dataset_fn.files)
    exports = {}
    if model.train_student and export:
        exports = export_all(config, manager.latest_checkpoint, os.path.join(model_dir, "export"))
    elif not model.train_student and config.distill.mode is config_lib.Mode.TEACHERS:
        print(f"teachers pre-trained; distil from them with checkpoint: {model_dir} on each of "
              f"{', '.join(model.co_trained())} in teachers:", flush=True)
    elif not model.train_student:
        print(f"teacher pre-trained; distil from it (Ind&Async) with --set "
              f"distill.teacher_checkpoint={os.path.abspath(manager.latest_checkpoint)}", flush=True)

    def held_out_metrics(who):
        if f"{who}_logloss" not in results:
            return None
        out = {"logloss": float(results[f"{who}_logloss"])}
        if f"{who}_auc" in results:
            out["auc"] = float(results[f"{who}_auc"])
        return out

    examples = trained_steps * config.train.batch_size
    metrics = {
        "mode": config.distill.mode.value,
        "student": held_out_metrics("student"),
        "teacher": held_out_metrics("teacher"),
        # Every teacher by name (the preset's one teacher is `teacher`), the ensemble of several teachers, and
        # each teacher's mean weight in it (alpha_i of Eq. (11) of Zhu et al.; 1/M for the average).
        "teachers": {name: held_out_metrics(name) for name in model.teacher_names},
        "ensemble": held_out_metrics("ensemble"),
        "ensemble_weights": {name: float(results[f"alpha_{name}"]) for name in model.teacher_names
                             if f"alpha_{name}" in results},
        "steps": final_step,
        "epochs": round(final_step * config.train.batch_size / train_rows, 4),
        "train_rows": train_rows,
        "warmup_steps": config.train.warmup_steps,
        "swap_step": config.distill.swap_step,
        "examples": examples,
        "train_seconds": round(train_seconds, 3),
        "examples_per_second": round(examples / train_seconds, 1) if train_seconds > 0 else 0.0,
        "epoch_seconds": timer.seconds,
        "eval": results,
        "eval_rows": held_out,
        "checkpoint": manager.latest_checkpoint,
    }
    if model.visits is not None:
        metrics["visits"] = visit_summary(config.train.count_visits, model.visits.numpy())
    if stopping is not None:
        stopping.record["finished"] = True  # a restart finds the run done, though it stopped before train.steps
        early_stopping.write_record(model_dir, stopping.record)
        metrics["early_stopping"] = {k: stopping.record.get(k) for k in ("metric", "best_step", "best", "stopped",
                                                                           "history")}
    path = os.path.join(model_dir, "metrics.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    os.replace(path + ".tmp", path)
    if verbose:
        print(f"metrics: {path}", flush=True)
        for name, where in exports.items():
            print(f"export ({name}): {where}", flush=True)
    return metrics


def visit_summary(feature: str, visits) -> dict:
    """How many ids of `feature` the run trained on 0, 1, 2, ... times (train.count_visits)."""
    counts = {int(k): int(v) for k, v in enumerate(np.bincount(visits)) if v}
    return {"feature": feature, "ids": int(len(visits)), "ids_by_count": counts}


def _as_input(strategy: tf.distribute.Strategy, dataset_fn):
    """What `fit`/`evaluate` take: a DatasetCreator under ParameterServerStrategy, else the dataset."""
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        from pfd_tf.data.service import INPUT_OPTIONS  # no read-ahead beyond the tf.data service client's

        return keras.utils.experimental.DatasetCreator(dataset_fn, input_options=INPUT_OPTIONS)
    return dataset_fn(None)
