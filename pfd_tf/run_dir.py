"""A model_dir knows its run: its config is the run's identity, a lock keeps a second process out.

`model_dir/config.yaml` is what the run trained.  A run started again on the
same directory resumes it, and may change only what does not change what
was trained (`MAY_CHANGE`: more steps, logging and evaluation settings,
cluster sizes); those changes are appended to `model_dir/resumes.jsonl`.
Any other difference is refused before anything is written, listing the
keys; `--overwrite` removes what pfd-train wrote (`RUN_FILES`) and starts
afresh.  A finished run (its final checkpoint and `metrics.json` written)
started again with the same config is left alone; asked for other held-out
rows (`SCORED`), it is refused and points to pfd-eval, which scores a run on
other files without touching metrics.json.  `train_files.json` records the
training files (`pfd_tf.run_data`): a resume on changed files is refused
too, unless `--allow-data-change`.  `feature_stats.json`
holds what the training files gave the config (`pfd_tf.data.feature_stats`),
computed when the run started, read back when it resumes.  `vocabularies/`
holds the run's copy of each feature's vocabulary (`pfd_tf.data.vocab`):
counted from the training files (`min_count`) or copied from its
`vocabulary_file` or `data.vocabulary_dir`.  The config names those files,
the copies say what was trained: a resumed run whose vocabulary file no
longer holds what its copy holds is refused, naming the key, and a counted
vocabulary is read back, not counted again.

`model_dir/.lock` holds the pid and host of the process training into the
directory (the chief on a cluster).  A lock whose process is gone (same
host, pid not alive) is stale and taken over; on another host it cannot
be checked, so the error says which file to remove.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from typing import Any, Mapping


from pfd_tf import config as config_lib
from pfd_tf.config import Config

LOCK = ".lock"
RESUMES = "resumes.jsonl"
FEATURE_STATS = "feature_stats.json"  # mean and std of value features, computed when the run started
VOCABULARIES = "vocabularies"  # the run's copy of every vocabulary file (pfd_tf.data.vocab)
# What pfd-train, its evaluator and pfd-launch write into a model_dir: what --overwrite removes.
RUN_FILES = ("config.yaml", "checkpoints", "logs", "export", "export.tmp", "metrics.json",
             "sidecar_metrics.jsonl", "tf_data_service", RESUMES, FEATURE_STATS, VOCABULARIES,
             "early_stopping.json", "best", "best.tmp", "config.fingerprint.json", "train_files.json", "eval")
# Keys (dotted, or a section followed by ".") that a resumed run may change.
MAY_CHANGE = ("train.steps", "train.epochs", "train.log_every", "train.eval_batch_size", "train.eval_steps",
              "train.steps_per_execution", "train.divergence_margin", "train.divergence_training_margin",
              "data.eval_files", "data.validation_files", "cluster.")
# Keys that say which held-out rows metrics.json scores: a finished run does not score them again (pfd-eval does).
SCORED = ("data.eval_files", "train.eval_steps")


class RunDirError(ValueError):
    """The model_dir holds another run, is in use, or cannot be written; the message says which."""


def flatten(raw: Any, prefix: str = "") -> dict[str, Any]:
    """`{"train": {"steps": 3}}` -> `{"train.steps": 3}`; features and teachers by name: `features.price.dim`,
    `teachers.fm.checkpoint`, students by index: `students.0.model` (and `features`, `teachers`, `students`:
    their names or indices in order)."""
    if isinstance(raw, Mapping):
        out = {}
        for key, value in raw.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if prefix in ("features.", "teachers.", "students.") and isinstance(raw, list):
        out = {prefix[:-1]: [spec.get("name", i) for i, spec in enumerate(raw)]}  # which, in which order
        for i, spec in enumerate(raw):
            out.update(flatten(spec, f"{prefix}{spec.get('name', i)}."))
        return out
    return {prefix[:-1]: raw}


def identity(config: Config) -> dict[str, Any]:
    """The config as `config.yaml` stores it (data paths absolute), flattened."""
    return flatten(config_lib.saved_dict(config))


def differences(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """`{key: (old value, new value)}` for every key that differs."""
    a, b = identity(old), identity(new)
    return {key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)}


def may_change(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in MAY_CHANGE)


def trained_differences(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """The `differences` in what was trained: those a resume may not make.

    The validation files are trained on with `train.merge_validation`: then they may not change either.
    """
    merged = old.train.merge_validation or new.train.merge_validation
    return {k: v for k, v in differences(old, new).items()
            if not may_change(k) or (merged and k == "data.validation_files")}


def saved_config(model_dir: str) -> Config | None:
    """The config of the run in `model_dir`, or None if it holds none."""
    path = os.path.join(model_dir, "config.yaml")
    if not os.path.exists(path):
        return None
    try:
        return config_lib.load(path)
    except config_lib.ConfigError as err:
        raise RunDirError(f"{path}: the run's config cannot be read ({err}); --overwrite starts afresh") from None


def check_resume(model_dir: str, config: Config) -> dict[str, tuple[Any, Any]]:
    """Refuses `config` if `model_dir` holds a run it differs from in what was trained.

    Returns the differences that a resume may make (empty for a new run or an
    identical config).  A directory with checkpoints but no `config.yaml` is
    refused too: nothing says what trained them.
    """
    old = saved_config(model_dir)
    if old is None:
        if os.path.isdir(os.path.join(model_dir, "checkpoints")) and os.listdir(os.path.join(model_dir, "checkpoints")):
            raise RunDirError(f"{model_dir}: holds checkpoints but no config.yaml; "
                              "--overwrite starts a new run there")
        return {}
    refused = trained_differences(old, config)
    if refused:
        listed = "; ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in list(refused.items())[:8])
        more = f" (and {len(refused) - 8} more)" if len(refused) > 8 else ""
        raise RunDirError(
            f"{model_dir}: holds a run whose config differs in what was trained: {listed}{more}. "
            "Train into another --model_dir, or pass --overwrite to remove that run and start afresh")
    return differences(old, config)


def record_resume(model_dir: str, step: int, changed: Mapping[str, tuple[Any, Any]],
                  data: Mapping[str, Mapping] | None = None) -> None:
    """Appends the keys a resumed run changed to `model_dir/resumes.jsonl`, and the training files that changed
    (`pfd_tf.run_data.changes`, allowed by --allow-data-change) under "data"."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "step": step,
             "changed": {k: {"was": v[0], "now": v[1]} for k, v in changed.items()}}
    if data:
        entry["data"] = dict(data)
    with open(os.path.join(model_dir, RESUMES), "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def remove_run(model_dir: str) -> list[str]:
    """--overwrite: removes what pfd-train wrote in `model_dir` (and nothing else); returns the names."""
    removed = []
    for name in RUN_FILES:
        path = os.path.join(model_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed.append(name)
    return removed


def finished_message(model_dir: str, steps: int, latest_step: int | None) -> str | None:
    """What to say if the run in `model_dir` already finished its `steps`, else None."""
    metrics = os.path.join(model_dir, "metrics.json")
    if latest_step is None or latest_step < steps or not os.path.exists(metrics):
        return None
    return (f"{model_dir}: this run finished at step {latest_step} of {steps}; its results are in {metrics}. "
            "Nothing trained or written. To train more, raise train.steps or train.epochs; "
            "to train again, pass --overwrite")


def check_not_rescored(model_dir: str, changed: Mapping[str, tuple[Any, Any]]) -> None:
    """A finished run asked to score other held-out rows: RunDirError pointing to pfd-eval.

    Its metrics.json scores the held-out files it was trained with; printing
    them as the answer for other files would look like new numbers.
    """
    asked = {k: v for k, v in changed.items() if k in SCORED}
    if asked:
        listed = "; ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in asked.items())
        raise RunDirError(
            f"{model_dir}: this run is finished, and its metrics.json scores the held-out rows it was trained "
            f"with, not these ({listed}). Nothing trained or written. Score a finished run on other files with "
            f"pfd-eval --model_dir {model_dir} --files GLOB")


class RunLock:
    """`model_dir/.lock`: one training process per model_dir (a context manager)."""

    def __init__(self, model_dir: str):
        self.path = os.path.join(model_dir, LOCK)
        self.held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and not self._stale(holder):
                    raise RunDirError(
                        f"{os.path.dirname(self.path)}: in use by pid {holder.get('pid')} on host "
                        f"{holder.get('host')} (since {holder.get('started')}); wait for it, or train into "
                        f"another --model_dir. If that process is gone, remove {self.path}") from None
                self._remove_if(holder)
                continue
            except OSError as err:
                raise RunDirError(f"{os.path.dirname(self.path)}: cannot write the model_dir "
                                  f"({err.strerror})") from None
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
            except OSError as err:  # a full disk: created, but not written
                os.remove(self.path)
                raise RunDirError(
                    f"{os.path.dirname(self.path)}: cannot write the model_dir ({err.strerror})") from None
            self.held = True
            return
        raise RunDirError(f"{self.path}: another process took the lock meanwhile")

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def _holder(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None  # being written, or garbage: treated as stale after a moment

    @staticmethod
    def _stale(holder: Mapping) -> bool:
        if holder.get("host") != socket.gethostname():
            return False  # cannot tell from here
        pid = holder.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return True  # a container restarted with the same pid, or a broken file
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _is_zombie(pid)

    def _remove_if(self, holder: Mapping | None) -> None:
        if holder is None:
            time.sleep(0.2)  # a lock being written: look again once
            if self._holder() is None and os.path.exists(self.path):
                os.remove(self.path)
            return
        if self._holder() == holder:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
