"""What a run checks before it writes anything into its model_dir, and what it writes once it has restored.

`prepare` does every check that can be done before training: the model_dir's
run (`pfd_tf.run_dir`: its config, its training files `pfd_tf.run_data`), the
pre-trained teachers, the warm start of a run's step 0 (`model.init_from`:
`pfd_tf.distill.warm_start.check`), the data (every training file opened and
counted, the held-out files read through once), and, for a resume, the checkpoint it
resumes from (`pfd_tf.checkpoints`: the newest intact one, each damaged
newer one skipped with a warning).  A bad config, bad data, a damaged run or
a finished one end here, with nothing written.

It writes only what building the model needs (the feature statistics and
the run's vocabulary copies: the same bytes on a resume) and, with
`--overwrite`, removes the previous run.  The run's identity (config.yaml,
train_files.json) and its resumes.jsonl entry are written by `Plan.commit`,
which the trainer calls once the restore has succeeded: a resume that
cannot restore changes none of them.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from typing import Any

from pfd_tf import checkpoints, config as config_lib, early_stopping, run_data, run_dir
from pfd_tf.config import fingerprint as config_fingerprint
from pfd_tf.small_data import warn_if_small
from pfd_tf.config import Config
from pfd_tf.data import feature_stats, vocab
from pfd_tf.data.files import resolve_files
from pfd_tf.data.pipeline import check_eval_split, training_rows_per_file
from pfd_tf.distill import gate_data, warm_start
from pfd_tf.distill.pretrained import check_checkpoints


@dataclasses.dataclass
class Plan:
    """A run checked and ready to train, or finished (`finished`: its metrics.json)."""

    model_dir: str
    config: Config  # as given: what config.yaml stores
    resolved: Config = None  # what trains: length in steps, feature statistics, the run's vocabularies
    train_counts: list[int] = dataclasses.field(default_factory=list)
    held_out: dict = dataclasses.field(default_factory=dict)  # check_eval_split's count of the held-out rows
    resume_from: str | None = None  # the intact checkpoint the run resumes from
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # damaged newer ones, and why
    changed: dict[str, Any] = dataclasses.field(default_factory=dict)  # config keys a resume changes
    data_files: dict[str, dict] = dataclasses.field(default_factory=dict)  # pfd_tf.run_data.describe
    data_changes: dict[str, dict] = dataclasses.field(default_factory=dict)  # allowed by --allow-data-change
    finished: dict | None = None

    def commit(self, start_step: int) -> None:
        """Writes the run's identity and its resume record: once the checkpoint has been restored."""
        config_fingerprint.save_config(self.config, self.model_dir)  # config.yaml, and what pfd-export checks
        run_data.write(self.model_dir, self.data_files)
        if self.changed or self.data_changes:
            run_dir.record_resume(self.model_dir, start_step, self.changed, self.data_changes)


def prepare(config: Config, model_dir: str, overwrite: bool, allow_data_change: bool) -> Plan:
    """Checks the run in `model_dir` (an absolute path, locked by the caller); see the module's docstring."""
    plan = Plan(model_dir, config)
    plan.changed = {} if overwrite else run_dir.check_resume(model_dir, config)
    check_checkpoints(config)  # the pre-trained teachers' runs
    trained = early_stopping.with_validation_merged(config)  # train.merge_validation: trains on them too
    gate_data.check_files(config)  # distill.gate_data: validation
    plan.train_counts = training_rows_per_file(trained)
    plan.held_out = check_eval_split(config)
    if not plan.held_out["positives"] or not plan.held_out["negatives"]:
        print(f"warning: the held-out files ({', '.join(plan.held_out['files'])}) hold one class only "
              f"({plan.held_out['positives']} positives, {plan.held_out['negatives']} negatives): AUC is undefined "
              "and will not be reported", file=sys.stderr, flush=True)
    resolved = config_lib.resolve_length(trained, sum(plan.train_counts))
    directory = os.path.join(model_dir, "checkpoints")
    listed = [] if overwrite else checkpoints.listed(directory)
    latest_step = checkpoints.step_of(listed[-1]) if listed else None
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
        run_dir.check_not_rescored(model_dir, plan.changed)
        print(finished, flush=True)
        with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
            plan.finished = json.load(f)
        return plan
    if listed:
        plan.resume_from, plan.skipped = checkpoints.intact_checkpoints(directory)
        checkpoints.warn_skipped(plan.skipped, plan.resume_from)
    plan.data_files = run_data.describe(resolve_files(trained, "train_files"), plan.train_counts)
    if plan.resume_from:
        plan.data_changes = run_data.check(model_dir, plan.data_files, allow_data_change)
    warn_if_small(resolved, sum(plan.train_counts))  # too few steps or rows to learn from: say so before training
    resuming = not overwrite and os.path.exists(os.path.join(model_dir, "config.yaml"))
    stats = feature_stats.for_run(config, model_dir, resume=resuming)
    vocabularies = vocab.for_run(config, model_dir, resume=resuming)  # counted (min_count) or read, not written
    resolved = config_lib.with_feature_stats(resolved, stats)
    if not plan.resume_from:
        _check_warm_start(resolved, vocabularies)  # model.init_from: a resume restores its own checkpoint
    if overwrite and run_dir.remove_run(model_dir):
        print(f"--overwrite: removed the previous run in {model_dir}", flush=True)
    if stats:  # before config.yaml: the sidecar, once it sees this run's config, finds them
        feature_stats.write(model_dir, stats)
    plan.resolved = vocab.install(resolved, model_dir, vocabularies)  # model_dir/vocabularies, the run's copies
    return plan


def _check_warm_start(config: Config, vocabularies: dict) -> None:
    """`model.init_from` checked on networks whose tables have their final sizes: the counted vocabularies
    are written into a temporary directory, for nothing is written into the model_dir yet."""
    if not config.model.init_from.checkpoint:
        return
    if not vocabularies:
        warm_start.check(config)
        return
    with tempfile.TemporaryDirectory() as scratch:
        warm_start.check(vocab.install(config, scratch, vocabularies))
