"""Wires config, strategy, data and callbacks around the Distiller; `fit` does the looping.

The same `train` runs single-machine (default strategy) and on the chief of a
parameter-server cluster (ParameterServerStrategy, whose ClusterCoordinator
`fit` drives).  It leaves in `model_dir`:
- `config.yaml`: the run's config as given (data paths absolute), and
  `train_files.json`, the training files it trained on: its identity
  (`pfd_tf.run_dir`, `pfd_tf.run_data`); `resumes.jsonl`: what each resume changed;
- `feature_stats.json`: the mean and std of the numeric features fed as
  values whose config leaves them unset, from one pass over the training
  files (`pfd_tf.data.feature_stats`); the run trains on the config
  resolved with them;
- `checkpoints/`: `tf.train.Checkpoint(model=distiller)` every `train.log_every`
  steps (a "Keras epoch"), numbered by step; a run started again on the same
  `model_dir` with the same config resumes from the latest intact one
  (`pfd_tf.checkpoints`);
- `logs/`: TensorBoard summaries;
- `export/student/`: the student SavedModel (not for `distill.teacher_only`,
  whose student is never trained);
- `metrics.json`: held-out AUC and log loss of the student and of each teacher
  by name, and of their ensemble (exact, see
  `pfd_tf.evaluation`; no AUC when the held-out rows hold one class), the
  run's length in steps and epochs, speed.  A run whose loss blew up (NaN,
  or finite and far above the constant predictor's: `pfd_tf.divergence`)
  stops with `NonFiniteLossError` and writes neither metrics.json nor export.
"""
from __future__ import annotations

import gc
import os
import time
from typing import Any, Callable

import numpy as np

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import Config
from pfd_tf.cluster import drain
from pfd_tf.cluster.data_service import training_workers
from pfd_tf.cluster.strategy import table_partitioning
from pfd_tf import checkpoints, early_stopping, finite_json, run_dir, run_plan
from pfd_tf.callbacks import CheckpointEveryEpoch, EpochTimer, Progress, StopOnNonFiniteLoss
from pfd_tf.data.pipeline import DataError, diagnose, make_dataset_fn
from pfd_tf.divergence import StopOnDivergence, check_held_out
from pfd_tf.evaluation import Evaluator, summarize
from pfd_tf.export_two_tower import export_all
from pfd_tf.distill import gate_data, warm_start
from pfd_tf.distill.build import build_distiller
from pfd_tf.distill.distiller import Distiller
from pfd_tf.distill.pretrained import load_teacher
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


def build_and_compile(config: Config, strategy: tf.distribute.Strategy, warm: bool = False) -> Distiller:
    """The distiller with its variables (and the optimizer's slots) placed by `strategy`; `warm`: its networks
    warm-started as `model.init_from` says (a run's step 0 only: `pfd_tf.distill.warm_start`)."""
    with strategy.scope(), table_partitioning():
        model = build_distiller(config)
        for teacher in config.teacher_specs:
            if teacher.checkpoint:
                load_teacher(model, teacher.name, config.resolve_path(teacher.checkpoint))
        restored = warm_start.apply(model, config) if warm else []
        if restored:
            print(f"warm start: {', '.join(restored)} from {config.model.init_from.checkpoint}", flush=True)
        # Compiled after freezing: Keras fixes the trainable set when it compiles.
        model.compile(optimizer=make_optimizer(config.train), steps_per_execution=steps_per_execution(config, strategy))
        model.optimizer.build(model.trainable_variables)
    return model


def explain_data_errors(run, config: Config, files) -> Any:
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
    allow_data_change: bool = False,
) -> dict:
    """Trains teacher and student as the config says; returns what metrics.json holds.

    Under ParameterServerStrategy, `data_service` is the address of the tf.data
    service's dispatcher that feeds the workers (`pfd_tf.cluster.data_service`);
    or `start_cluster(config) -> (strategy, data_service)` starts them once
    the checks have passed (the chief of `pfd-train`).
    Everything that can be checked before training is, before anything is
    written into `model_dir` (`pfd_tf.run_plan`); `overwrite` removes a
    previous run there first; `allow_data_change` resumes on training files
    that changed since the run recorded them (`pfd_tf.run_data`).  A run
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
        plan = run_plan.prepare(config, model_dir, overwrite, allow_data_change)
        if plan.finished is not None:
            return plan.finished
        if start_cluster is not None:
            # The checks' datasets (and their functions) go before the cluster is connected; collected
            # later, each would ask every ps and worker to remove functions they never had (gRPC errors).
            gc.collect()
            strategy, data_service = start_cluster(plan.resolved)
        return _train(plan, strategy or tf.distribute.get_strategy(), verbose, data_service, export)


def _train(plan: run_plan.Plan, strategy, verbose: int, data_service: str | None, export: bool = True) -> dict:
    """The run itself, on a config whose length is resolved in steps (`config.resolve_length`)."""
    config, model_dir, train_counts = plan.resolved, plan.model_dir, plan.train_counts
    keras.utils.set_random_seed(config.train.seed)
    train_rows = sum(train_counts)
    local_train_fn = make_dataset_fn(config, "train", config.train.batch_size, training=True,
                                     rows_per_file=train_counts)
    gate_fn = gate_data.gate_batches_fn(config)  # distill.gate_data: validation; None otherwise

    model = build_and_compile(config, strategy, warm=plan.resume_from is None)

    checkpoint = tf.train.Checkpoint(model=model)
    directory = os.path.join(model_dir, "checkpoints")
    if plan.resume_from:
        checkpoints.restore(checkpoint, plan.resume_from)
        checkpoints.forget(directory, plan.skipped)
    start_step = int(model.optimizer.iterations.numpy())
    plan.commit(start_step)  # config.yaml, train_files.json, resumes.jsonl: only now that the restore worked
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=3)
    if start_step:
        print(f"resumed from {plan.resume_from} at step {start_step} "
              f"(lambda {float(model.current_lambda()):g})", flush=True)

    timer = EpochTimer()
    callbacks = [
        StopOnNonFiniteLoss(manager),  # before the checkpoint: diverged weights are never saved
        StopOnDivergence(manager, config.train.divergence_training_margin),  # a finite blow-up, likewise
        CheckpointEveryEpoch(manager),
        timer,
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), update_freq="epoch"),
    ]
    stopping = None
    if config.train.early_stopping is not config_lib.EarlyStopping.NONE:  # after the checkpoint it scores
        stopping = early_stopping.ValidationStopping(
            config, manager, model_dir, Evaluator(early_stopping.validation_config(config)))
        callbacks.insert(3, stopping)
    if verbose:
        callbacks.append(Progress(config.train.steps, config.train.batch_size, train_rows))
    started = time.perf_counter()
    # Each `fit` call reads on where the last step left off.  One machine: the stream from the
    # model's current step (pfd_tf.data.stream).  A cluster: one tf.data service job for the
    # chief's lifetime, from the step it started at; later `fit` calls join the job and read on.
    fits = fit_plan(start_step, config.train.steps, config.train.log_every)
    drained = bool(data_service and config.data.group_by and fits)  # pfd_tf.cluster.grouped_service: one fit call
    if drained:
        fits = [drain.drained_fit(start_step, config.train.steps, config.train.log_every)]
    cluster_train_fn = data_service and make_dataset_fn(
        config, "train", config.train.batch_size, training=True, start_step=start_step, data_service=data_service,
        rows_per_file=train_counts, fit_ends=[epochs * config.train.log_every for _, epochs, _ in fits[:-1]])
    if drained:
        callbacks.insert(0, drain.DrainHeldGroups((config.train.steps - start_step) * cluster_train_fn.groups_per_batch,
                                                  config.train.steps - start_step, config.train.log_every,
                                                  training_workers()))
    trained_before = int(model.trained_rows.numpy())
    for initial_epoch, epochs, steps_per_epoch in fits:
        if stopping is not None and stopping.record["stopped"]:
            break
        step = int(model.optimizer.iterations.numpy())
        train_fn = gate_data.with_gate_batches(cluster_train_fn or local_train_fn.starting_at(step), gate_fn, step)
        explain_data_errors(
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
    trained_rows = int(model.trained_rows.numpy())  # before a best checkpoint is restored
    best = early_stopping.best_checkpoint(model_dir) if stopping is not None else None
    if best and checkpoints.step_of(best) != final_step:
        checkpoints.restore(checkpoint, best)  # the run's result is its best checkpoint
        checkpoints.save(manager, int(model.optimizer.iterations.numpy()))
    if trained_steps and recalibrate_batch_norm(model, local_train_fn.starting_at(0)()):
        # The final checkpoint (what evaluation and export read) gets the statistics of the final weights.
        checkpoints.save(manager, int(model.optimizer.iterations.numpy()))

    evaluator = Evaluator(config)
    results = explain_data_errors(lambda: evaluator(manager.latest_checkpoint), config, evaluator.dataset_fn.files)
    check_held_out(results, model, plan.held_out, config.train.divergence_margin, manager.latest_checkpoint)
    exports = {}
    if model.train_student and export:
        exports = export_all(config, manager.latest_checkpoint, os.path.join(model_dir, "export"))
    elif not model.train_student and config.distill.mode is config_lib.Mode.TEACHERS:
        print(f"teachers pre-trained; distil from them with checkpoint: {model_dir} on each of "
              f"{', '.join(model.co_trained())} in teachers:", flush=True)
    elif not model.train_student:
        print(f"teacher pre-trained; distil from it (Ind&Async) with --set "
              f"distill.teacher_checkpoint={os.path.abspath(manager.latest_checkpoint)}", flush=True)

    examples = trained_rows - trained_before  # counted: grouped batches vary in size
    metrics = {
        "mode": config.distill.mode.value,
        **summarize(results, model.teacher_names, model.tasks, model.student_names),
        "steps": final_step,
        "epochs": round(trained_rows / train_rows, 4),
        "train_rows": train_rows,
        "warmup_steps": config.train.warmup_steps,
        "swap_step": config.distill.swap_step,
        "examples": examples,
        "train_seconds": round(train_seconds, 3),
        "examples_per_second": round(examples / train_seconds, 1) if train_seconds > 0 else 0.0,
        "epoch_seconds": timer.seconds,
        "eval": results,
        "eval_rows": plan.held_out,
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
        finite_json.dump(metrics, f)  # strict JSON: a metric that is not finite is left out, with a warning
    os.replace(path + ".tmp", path)
    if verbose:
        print(f"metrics: {path}", flush=True)
        for name, where in exports.items():
            print(f"export ({name}): {where}", flush=True)
    if config.train.cost_report and exports:
        report_costs(model_dir, config.student_names)
    return metrics


def report_costs(model_dir: str, students=("student",)) -> None:
    """train.cost_report: what `pfd-report MODEL_DIR` measures, printed and written to cost_report.json; for each
    other student `<name>`, its export's costs beside the teachers' in `export/<name>/cost_report.json`."""
    from pfd_tf import cost_report

    results = cost_report.report(model_dir)
    print(cost_report.table(results), flush=True)
    print(f"cost report: {cost_report.write(model_dir, results)}", flush=True)
    for name in students[1:]:
        export_dir = os.path.join(model_dir, "export", name)
        own = cost_report.report(model_dir, export_dir=export_dir, teacher_costs=cost_report.teacher_costs(results))
        print(f"student {name!r}:\n{cost_report.table(own)}", flush=True)
        print(f"cost report ({name}): {cost_report.write(export_dir, own)}", flush=True)


def visit_summary(feature: str, visits) -> dict:
    """How many ids of `feature` the run trained on 0, 1, 2, ... times (train.count_visits)."""
    counts = {int(k): int(v) for k, v in enumerate(np.bincount(visits)) if v}
    return {"feature": feature, "ids": int(len(visits)), "ids_by_count": counts}


def _as_input(strategy: tf.distribute.Strategy, dataset_fn):
    """What `fit`/`evaluate` take: a DatasetCreator under ParameterServerStrategy, else the dataset."""
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        from pfd_tf.cluster.data_service import INPUT_OPTIONS  # no read-ahead beyond the tf.data service client's

        return keras.utils.experimental.DatasetCreator(dataset_fn, input_options=INPUT_OPTIONS)
    return dataset_fn(None)
