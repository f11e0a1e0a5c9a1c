"""The runs of a comparison: each method at each grid point on the validation split, then at its best on each seed.

Every run is an ordinary pfd_tf run (`pfd_tf.trainer.train`) in its own
model_dir under `OUT/runs/`, named by what it trains:

    OUT/runs/validation/<method>/<grid point>  choice: training files minus the validation files
    OUT/runs/seed<seed>/<method>                evaluation: all training files, the held-out files

(a grid point's name: `lr0.8`, or `lr0.8-norm_batch` with more axes; `grid.GridPoint.slug`).
A comparison started again calls the same runs: a finished one is read back
from its `metrics.json`, an interrupted one resumes from its last checkpoint,
and one whose config changed (another `--set`) is refused by the run
directory's identity check rather than silently mixed in.

A run that diverges (the loss became NaN or infinite: `NonFiniteLossError`,
or its held-out log loss is not finite) is recorded as diverged, with the
error in its `train.log` and in `diverged.json`, and the comparison goes on;
started again, the run is read back as diverged, not trained again.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Mapping, Sequence

from pfd_tf import config as config_lib
from pfd_tf import run_dir
from pfd_tf._keras import keras
from pfd_tf.callbacks import NonFiniteLossError
from pfd_tf.compare.console import run_console
from pfd_tf.compare.grid import Grid, GridPoint, edge_notes
from pfd_tf.compare.methods import Method
from pfd_tf.compare.split import validation_split
from pfd_tf.config import Config
from pfd_tf.trainer import train

Log = Callable[[str], None]
DIVERGED = "diverged.json"  # in a run's model_dir: why it diverged


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
    point: GridPoint | None = None
    diverged: str | None = None  # the error, when the run diverged

    def to_dict(self) -> dict:
        return {"method": self.method.name, "mode": self.method.mode.value, "lambda": self.method.lambda_,
                "learning_rate": self.learning_rate, "grid_point": self.point.as_dict() if self.point else None,
                "seed": self.seed, "student": self.student, "teacher": self.teacher,
                "train_seconds": self.train_seconds, "model_dir": self.model_dir, "diverged": self.diverged}


def load_config(config_path: str, overrides: Sequence[str], method: Method, point: GridPoint, seed: int) -> Config:
    """The base config with the comparison's overrides, then the method's, its grid point and its seed."""
    terms = config_lib.load(config_path, overrides).distill.terms  # as written: empty for the shorthand
    return config_lib.load(config_path, [*overrides, *method.overrides(terms), *point.overrides(),
                                         f"train.seed={seed}"])


def train_one(config: Config, model_dir: str, method: Method, point: GridPoint, export: bool, log: Log,
              label: str) -> Run:
    """Trains (or resumes, or reads back) one run; its console output goes to `model_dir/train.log`."""
    os.makedirs(model_dir, exist_ok=True)
    keras.backend.clear_session()
    started = time.perf_counter()
    log_path = os.path.join(model_dir, "train.log")
    offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    metrics, diverged = None, _diverged_before(model_dir, config)
    if diverged is None:
        with run_console(log_path):
            try:
                metrics = train(config, model_dir, verbose=1, export=export)
            except NonFiniteLossError as err:  # or a subclass: any guard that says the run diverged
                diverged = str(err)
                print(f"pfd-compare: this run diverged: {err}", flush=True)
            else:
                diverged = _nonfinite_metrics(metrics)
                if diverged:
                    print(f"pfd-compare: this run diverged: {diverged}", flush=True)
            if diverged:
                with open(os.path.join(model_dir, DIVERGED), "w", encoding="utf-8") as f:
                    json.dump({"error": diverged}, f)
        with open(log_path, encoding="utf-8") as f:
            f.seek(offset)
            done_before = "finished at step" in f.read()
    else:
        done_before = True
    seconds = time.perf_counter() - started
    metrics = metrics or {}
    run = Run(method, config.train.learning_rate, config.train.seed, metrics.get("student"), metrics.get("teacher"),
              metrics.get("train_seconds", 0.0), model_dir, point, diverged)
    auc = run.student.get("auc") if run.student else None
    shown = "diverged" if diverged else f"student AUC {auc:.4f}" if auc is not None else "student AUC undefined"
    log(f"{label}: {shown}  " + ("(finished before)" if done_before else f"({seconds:.0f} s)"))
    return run


def _diverged_before(model_dir: str, config: Config) -> str | None:
    """The error of a run that diverged in an earlier start of the comparison (same config), else None."""
    path = os.path.join(model_dir, DIVERGED)
    if not os.path.exists(path):
        return None
    run_dir.check_resume(model_dir, config)  # another config there is refused, as train() would
    with open(path, encoding="utf-8") as f:
        return json.load(f)["error"]


def _nonfinite_metrics(metrics: dict) -> str | None:
    for who in ("student", "teacher"):
        for name, value in (metrics.get(who) or {}).items():
            if not math.isfinite(value):
                return f"the held-out {who} {name} is {value}"
    return None


def choose_points(config_path: str, overrides: Sequence[str], methods: Sequence[Method], grid: Grid, seed: int,
                  out_dir: str, log: Log) -> tuple[dict[str, GridPoint | None], list[Run], list[str]]:
    """Trains each method at each grid point on the validation split.

    Returns ({method name: its best point, None if every point diverged},
    the runs, notes on best values at the grid's edges).  The best point has
    the highest validation student AUC (the lowest log loss where AUC is
    undefined); every method gets the same grid.
    """
    runs, chosen, notes = [], {}, []
    for method in methods:
        mine = []
        for point in grid.points():
            config = validation_split(load_config(config_path, overrides, method, point, seed))
            model_dir = os.path.join(out_dir, "runs", "validation", method.slug, point.slug)
            mine.append(train_one(config, model_dir, method, point, False, log,
                                  f"validation  {method.name}  {point.label}"))
        chosen[method.name] = best_point(mine)
        if chosen[method.name] is None:
            log(f"note: {method.name} diverged at every grid point; it is not evaluated")
        mine_notes = edge_notes(method.name, grid, {r.point: score(r) for r in mine if not r.diverged})
        for note in mine_notes:
            log(f"note: {note}; a wider grid may find a better one")
        notes += mine_notes
        runs += mine
    return chosen, runs, notes


def best_point(runs: Sequence[Run]) -> GridPoint | None:
    """The point of the best run that did not diverge (first in grid order on a tie); None if all diverged."""
    trained = [r for r in runs if not r.diverged]
    return max(trained, key=score).point if trained else None


def score(run: Run) -> tuple:
    """Validation student AUC; where it is undefined (one class), minus the log loss, ranked below any AUC."""
    student = run.student or {}
    if "auc" in student:
        return (1, student["auc"])
    return (0, -student.get("logloss", float("inf")))


def evaluate(config_for_seed: Callable[[int], str], overrides: Sequence[str], methods: Sequence[Method],
             chosen: Mapping[str, GridPoint | None], seeds: Sequence[int], out_dir: str, log: Log) -> list[Run]:
    """Trains every method at its chosen grid point on every seed; evaluated on the config's held-out files.

    A method that diverged at every grid point (chosen None) is not trained.

    `config_for_seed(seed)` is the config file of that seed's run: the same
    file for every seed on a user's data (seeds vary the initialization and
    the shuffling), one synthetic world per seed in the benchmarks.
    """
    runs = []
    for seed in seeds:
        path = config_for_seed(seed)
        for method in methods:
            point = chosen[method.name]
            if point is None:
                continue
            config = load_config(path, overrides, method, point, seed)
            model_dir = os.path.join(out_dir, "runs", f"seed{seed}", method.slug)
            runs.append(train_one(config, model_dir, method, point, True, log,
                                  f"seed {seed}  {method.name}  {point.label}"))
    return runs
