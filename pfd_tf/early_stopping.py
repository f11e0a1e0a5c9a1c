"""Early stopping on validation files, by the student's distillation loss or by AUC (Section 3.4.2 of Zhu et al. 2020).

"When training a teacher model, we employ the left-out validation set to
monitor the metrics (e.g., AUC) for early stopping.  When training a student
model, we instead propose to use the distillation loss from the teacher
model as the signal", which lets the validation data (often the most recent
day) join the student's training (`train.merge_validation`).

At each checkpoint (every `train.log_every` steps) `ValidationStopping`
scores it exactly on `data.validation_files` (`pfd_tf.evaluation.Evaluator`,
outside any strategy, as the held-out evaluation), keeps a copy of the best
checkpoint in `model_dir/best/`, and stops `fit` after
`train.early_stopping_patience` scores without improvement.  Its record,
`model_dir/early_stopping.json`, survives a restart: a resumed run goes on
counting where it left off, and a run that stopped is finished.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil

from pfd_tf._keras import keras, tf
from pfd_tf.config import Config, ConfigError, EarlyStopping
from pfd_tf.data.files import real_files
from pfd_tf.names import SERVED, auc_key

RECORD = "early_stopping.json"
BEST = "best"


def validation_config(config: Config) -> Config:
    """The config whose held-out files are the validation files (what the stopping rule scores on)."""
    return dataclasses.replace(config, data=dataclasses.replace(config.data, eval_files=config.data.validation_files))


def with_validation_merged(config: Config) -> Config:
    """The config a run trains on: with `train.merge_validation`, the validation files join the training files.

    Checks the validation files are neither held-out files nor (unmerged)
    training files; ConfigError naming `data.validation_files` otherwise.
    """
    if config.train.early_stopping is EarlyStopping.NONE:
        return config
    train, validation, held_out = (real_files(config, key) for key in ("train_files", "validation_files", "eval_files"))
    for path in validation:
        if path in held_out:
            raise ConfigError(f"data.validation_files: {path} is a held-out file (data.eval_files): the run would "
                              "stop by the evaluation's own rows")
        if path in train and not config.train.merge_validation:
            raise ConfigError(f"data.validation_files: {path} is a training file too; stopping would be scored "
                              "on trained rows (list other files, or set train.merge_validation: true)")
    if not config.train.merge_validation:
        return config
    merged = tuple(config.data.train_files) + tuple(p for p in validation if p not in train)
    return dataclasses.replace(config, data=dataclasses.replace(config.data, train_files=merged))


def score(results: dict, rule: EarlyStopping, teachers: list[str]) -> tuple[float, str]:
    """(value to minimize, what it is) from an Evaluator's results."""
    if rule is EarlyStopping.DISTILLATION:
        return float(results["loss_distill"]), "validation loss_distill"
    if auc_key(SERVED) in results:
        return -float(results[auc_key(SERVED)]), f"validation {auc_key(SERVED)} (negated)"
    aucs = [float(results[auc_key(name)]) for name in teachers]
    return -sum(aucs) / len(aucs), f"validation mean AUC of {', '.join(teachers)} (negated)"


class ValidationStopping(keras.callbacks.Callback):
    """Scores each new checkpoint on the validation files; keeps the best; stops after `patience` worse ones.

    Listed after `CheckpointEveryEpoch`, so the epoch's checkpoint exists
    when it runs.
    """

    def __init__(self, config: Config, manager: tf.train.CheckpointManager, model_dir: str, evaluator):
        super().__init__()
        self.rule = config.train.early_stopping
        self.patience = config.train.early_stopping_patience
        self.manager, self.model_dir, self.evaluator = manager, model_dir, evaluator
        self.record = read_record(model_dir) or {"rule": self.rule.value, "history": [], "best_step": None,
                                                 "best": None, "bad": 0, "stopped": False}

    def on_epoch_end(self, epoch, logs=None):
        checkpoint = self.manager.latest_checkpoint
        step = int(checkpoint.rsplit("-", 1)[1])
        if any(entry["step"] == step for entry in self.record["history"]):
            return  # scored before a restart
        results = self.evaluator(checkpoint)
        value, what = score(results, self.rule, self.model.co_trained())
        record = self.record
        record["metric"] = what
        record["history"].append({"step": step, "value": value})
        if record["best"] is None or value < record["best"]:
            record.update(best=value, best_step=step, bad=0)
            _copy_checkpoint(checkpoint, os.path.join(self.model_dir, BEST))
        else:
            record["bad"] += 1
        if record["bad"] >= self.patience:
            record["stopped"] = True
            self.model.stop_training = True
            print(f"early stopping at step {step}: {what} has not improved for {record['bad']} checkpoints; "
                  f"the best is step {record['best_step']}", flush=True)
        write_record(self.model_dir, record)


def best_checkpoint(model_dir: str) -> str | None:
    """The prefix of the best checkpoint kept in `model_dir/best/`, or None."""
    return tf.train.latest_checkpoint(os.path.join(model_dir, BEST))


def read_record(model_dir: str) -> dict | None:
    path = os.path.join(model_dir, RECORD)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_record(model_dir: str, record: dict) -> None:
    path = os.path.join(model_dir, RECORD)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    os.replace(path + ".tmp", path)


def _copy_checkpoint(prefix: str, directory: str) -> None:
    """Copies checkpoint `prefix` (its index and data files) into `directory`, replacing what was there."""
    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for path in glob.glob(prefix + ".*"):
        shutil.copy2(path, tmp)
    name = os.path.basename(prefix)
    with open(os.path.join(tmp, "checkpoint"), "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
