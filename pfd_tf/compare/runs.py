"""The runs of a comparison: each method at each rate on the validation split, then at its rate on each seed.

Every run is an ordinary pfd_tf run (`pfd_tf.trainer.train`) in its own
model_dir under `OUT/runs/`, named by what it trains:

    OUT/runs/validation/<method>/lr<rate>     rate choice: training files minus the validation files
    OUT/runs/seed<seed>/<method>              evaluation: all training files, the held-out files

A comparison started again calls the same runs: a finished one is read back
from its `metrics.json`, an interrupted one resumes from its last checkpoint,
and one whose config changed (another `--set`) is refused by the run
directory's identity check rather than silently mixed in.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import time
from typing import Callable, Mapping, Sequence

from pfd_tf import config as config_lib
from pfd_tf._keras import keras
from pfd_tf.compare.methods import Method
from pfd_tf.compare.split import validation_split
from pfd_tf.config import Config
from pfd_tf.trainer import train

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained run's outcome, as the report reads it."""

    method: Method
    learning_rate: float
    seed: int
    student: dict | None  # {"auc", "logloss"} on the files it was evaluated on
    teacher: dict | None
    train_seconds: float
    model_dir: str

    def to_dict(self) -> dict:
        return {"method": self.method.name, "mode": self.method.mode.value, "lambda": self.method.lambda_,
                "learning_rate": self.learning_rate, "seed": self.seed, "student": self.student,
                "teacher": self.teacher, "train_seconds": self.train_seconds, "model_dir": self.model_dir}


def load_config(config_path: str, overrides: Sequence[str], method: Method, rate: float, seed: int) -> Config:
    """The base config with the comparison's overrides, then the method's, its rate and its seed."""
    return config_lib.load(config_path, [*overrides, *method.overrides(), f"train.learning_rate={rate!r}",
                                         f"train.seed={seed}"])


def train_one(config: Config, model_dir: str, method: Method, export: bool, log: Log, label: str) -> Run:
    """Trains (or resumes, or reads back) one run; its console output goes to `model_dir/train.log`."""
    os.makedirs(model_dir, exist_ok=True)
    keras.backend.clear_session()
    started = time.perf_counter()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            metrics = train(config, model_dir, verbose=0, export=export)
    finally:
        with open(os.path.join(model_dir, "train.log"), "a", encoding="utf-8") as f:
            f.write(captured.getvalue())
    seconds = time.perf_counter() - started
    run = Run(method, config.train.learning_rate, config.train.seed, metrics["student"], metrics["teacher"],
              metrics["train_seconds"], model_dir)
    done_before = "finished at step" in captured.getvalue()
    auc = run.student.get("auc") if run.student else None
    shown = f"student AUC {auc:.4f}" if auc is not None else "student AUC undefined"
    log(f"{label}: {shown}  " + ("(finished before)" if done_before else f"({seconds:.0f} s)"))
    return run


def choose_rates(config_path: str, overrides: Sequence[str], methods: Sequence[Method], rates: Sequence[float],
                 seed: int, out_dir: str, log: Log) -> tuple[dict[str, float], list[Run]]:
    """Trains each method at each rate on the validation split; returns ({method name: best rate}, runs).

    The best rate is the one with the highest validation student AUC (the
    lowest log loss where AUC is undefined).  A best rate at either end of
    the grid is said in the log: the grid may be too narrow.
    """
    runs, chosen = [], {}
    for method in methods:
        mine = []
        for rate in rates:
            config = validation_split(load_config(config_path, overrides, method, rate, seed))
            model_dir = os.path.join(out_dir, "runs", "validation", method.slug, f"lr{rate:g}")
            mine.append(train_one(config, model_dir, method, False, log, f"validation  {method.name}  lr {rate:g}"))
        best = max(mine, key=_score)
        chosen[method.name] = best.learning_rate
        if len(rates) > 1 and best.learning_rate in (min(rates), max(rates)):
            edge = "largest" if best.learning_rate == max(rates) else "smallest"
            log(f"note: {method.name}'s best rate {best.learning_rate:g} is the grid's {edge}; "
                "a wider --rates may find a better one")
        runs += mine
    return chosen, runs


def _score(run: Run) -> tuple:
    student = run.student or {}
    if "auc" in student:
        return (1, student["auc"])
    return (0, -student.get("logloss", float("inf")))


def evaluate(config_for_seed: Callable[[int], str], overrides: Sequence[str], methods: Sequence[Method],
             rate_of: Mapping[str, float], seeds: Sequence[int], out_dir: str, log: Log) -> list[Run]:
    """Trains every method at its chosen rate on every seed; evaluated on the config's held-out files.

    `config_for_seed(seed)` is the config file of that seed's run: the same
    file for every seed on a user's data (seeds vary the initialization and
    the shuffling), one synthetic world per seed in the benchmarks.
    """
    runs = []
    for seed in seeds:
        path = config_for_seed(seed)
        for method in methods:
            config = load_config(path, overrides, method, rate_of[method.name], seed)
            model_dir = os.path.join(out_dir, "runs", f"seed{seed}", method.slug)
            runs.append(train_one(config, model_dir, method, True, log,
                                  f"seed {seed}  {method.name}  lr {rate_of[method.name]:g}"))
    return runs
