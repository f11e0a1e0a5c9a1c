"""The run's length and what falls inside it: `train.steps` or `train.epochs` (resolved into steps once the
training rows are counted), the warm-up, and Eq. (5)'s swapping step (Algorithm 1 of the PFD paper) and each
distillation term's start, given as steps or as fractions of the run."""
from __future__ import annotations

import dataclasses
from typing import Mapping

from pfd_tf.config.distill import Mode
from pfd_tf.config.errors import ConfigError
from pfd_tf.config.schema import Config
from pfd_tf.config.terms_checks import check_term_starts, resolve_term_starts


DEFAULT_STEPS = 1000  # a run's length when neither train.steps nor train.epochs is set


def validate_length(config: Config) -> None:
    """One of train.steps and train.epochs (or neither); the warm-up and the swap as steps or fractions, not both."""
    train, distill = config.train, config.distill
    if train.steps < 0:
        raise ConfigError("train.steps: must be positive")
    if train.epochs < 0:
        raise ConfigError("train.epochs: must be positive")
    if train.steps and train.epochs:
        raise ConfigError("train.epochs: set the run's length by train.steps or by train.epochs, not both")
    for key, value in (("train.warmup_fraction", train.warmup_fraction), ("distill.swap_fraction", distill.swap_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{key}: a fraction of the run's steps, in [0, 1), got {value}")
    if train.warmup_steps and train.warmup_fraction:
        raise ConfigError("train.warmup_fraction: set the warm-up by train.warmup_steps or by train.warmup_fraction, not both")
    if distill.swap_step and distill.swap_fraction:
        raise ConfigError("distill.swap_fraction: set the swapping step by distill.swap_step or by distill.swap_fraction, not both")
    if train.steps:
        check_schedule(config)


def refuse_zero_length(raw_train) -> None:
    """ConfigError when the `train:` mapping given (parsed YAML, overrides applied) sets train.steps or
    train.epochs to 0 and neither is positive: left out, they mean DEFAULT_STEPS, but a 0 written (e.g.
    `--set train.steps=0`, which also drops the file's train.epochs) asks for a run of no step."""
    if not isinstance(raw_train, Mapping):
        return
    for key in ("steps", "epochs"):
        if key in raw_train:
            raise ConfigError(f"train.{key}: must be positive, got {raw_train[key]!r} (leave train.steps and "
                              f"train.epochs out for the default of {DEFAULT_STEPS} steps)")


def check_schedule(config: Config, length: str = "train.steps") -> None:
    """The warm-up and the swapping step fall inside the run (`config.train.steps`, resolved)."""
    train, distill = config.train, config.distill
    steps = train.steps
    if train.warmup_steps > steps:
        raise ConfigError(f"train.warmup_steps: {train.warmup_steps} is past the run's end ({length}: "
                          f"{steps} steps): the learning rate would never reach its peak")
    distilling = distill.mode is not Mode.BASELINE and not distill.teacher_only
    if distilling and distill.swap_step >= steps:
        raise ConfigError(f"distill.swap_step: {distill.swap_step} is at or past the run's end ({length}: "
                          f"{steps} steps): lambda would be 0 for the whole run")
    if distilling:
        check_term_starts(config, length)


def resolve_length(config: Config, train_rows: int) -> Config:
    """The config with the run's length in steps: train.epochs, train.warmup_fraction and
    distill.swap_fraction turned into train.steps, train.warmup_steps and distill.swap_step (and each
    term's schedule.start_fraction into its start_step).

    `train_rows` is the number of training rows (counted once when the run
    starts).  Raises ConfigError when the warm-up or the swapping step
    falls outside the run.
    """
    train, distill = config.train, config.distill
    steps, length = train.steps, "train.steps"
    if train.epochs:
        steps = max(1, round(train.epochs * train_rows / train.batch_size))
        length = f"train.epochs {train.epochs:g} of {train_rows} rows"
    warmup = round(train.warmup_fraction * steps) if train.warmup_fraction else train.warmup_steps
    swap = round(distill.swap_fraction * steps) if distill.swap_fraction else distill.swap_step
    resolved = dataclasses.replace(
        config,
        train=dataclasses.replace(train, steps=steps, epochs=0.0, warmup_steps=warmup, warmup_fraction=0.0),
        distill=resolve_term_starts(dataclasses.replace(distill, swap_step=swap, swap_fraction=0.0), steps),
    )
    check_schedule(resolved, length)
    return resolved
