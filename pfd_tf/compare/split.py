"""The validation split a comparison chooses its grid points on: never the held-out files it reports."""
from __future__ import annotations

import dataclasses

from pfd_tf.config import Config, ConfigError
from pfd_tf.data.files import real_files


def validation_split(config: Config) -> Config:
    """The config training on the training files minus the validation files, evaluated on those.

    The validation files are `data.validation_files`, or by default the last
    training file in name order: the last day, for day-partitioned logs, so
    rates are chosen by how well a model trained on the past predicts the
    next day, as the held-out day will be predicted.
    """
    train = real_files(config, "train_files")
    if config.data.validation_files:
        validation = real_files(config, "validation_files")
    elif len(train) < 2:
        raise ConfigError(
            f"data.validation_files: the training files are one file ({train[0]}); a learning rate is "
            "chosen on files held out of training: list them in data.validation_files")
    else:
        validation = train[-1:]
    held_out = set(real_files(config, "eval_files"))
    overlap = sorted(held_out.intersection(validation))
    if overlap:
        raise ConfigError(f"data.validation_files: {overlap[0]} is a held-out file (data.eval_files): "
                          "rates chosen on it would be chosen on the evaluation")
    rest = [f for f in train if f not in set(validation)]
    if not rest:
        raise ConfigError("data.validation_files: they are every training file; nothing would be left to train on")
    data = dataclasses.replace(config.data, train_files=tuple(rest), eval_files=tuple(validation))
    return dataclasses.replace(config, data=data)


class HeldOutOverlapError(ConfigError):
    """The runs that choose the grid points would read a file the evaluation holds out."""


def check_held_out_apart(tuning_path: str, tuning: Config, evaluation_path: str, evaluation: Config) -> None:
    """Refuses a choice (`tuning`: a `validation_split` config) that reads one of `evaluation`'s held-out files.

    The choosing runs read their training and validation files; none may be a
    file the evaluation reports on (compared by real path), or the grid
    point would be chosen on the evaluation.  `--validation_config` (another
    world or dataset) is where this can happen; the same config never does.
    """
    held_out = set(real_files(evaluation, "eval_files"))
    read = [*real_files(tuning, "train_files"), *real_files(tuning, "eval_files")]
    overlap = sorted(held_out.intersection(read))
    if overlap:
        raise HeldOutOverlapError(
            f"--validation_config {tuning_path}: its runs would read {overlap[0]}, a held-out file "
            f"(data.eval_files) of {evaluation_path}: grid points chosen on it would be chosen on the evaluation; "
            "choose on files the evaluation does not hold out")
