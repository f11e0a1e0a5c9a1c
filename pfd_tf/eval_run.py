"""What pfd-eval does: scores a trained run on other files, exactly as its held-out numbers were scored.

Reads the run's `config.yaml` (with its feature statistics and vocabularies,
as pfd-export does) and scores its final checkpoint (the newest the
`checkpoints/` state file lists), or the best one early stopping kept
(`model_dir/best`), on every row of the files the globs match, with
`pfd_tf.evaluation.Evaluator` and the run's length resolved as it trained:
the same exact AUC and log loss per network as metrics.json's.  The files are
checked as held-out files are (`check_eval_split`: a bad row is named by
file and line) and may not be files the run trained on (by real path: its
`train_files.json` and what its training globs match now) unless
`allow_train_files`.  A damaged checkpoint is a `CheckpointError` naming it
(never a silent fall-back to an older one).  The JSON goes to stdout and to
`out`, by default `model_dir/eval/<first file>[+N]-<final|best>-<8 hex
digits of the files' real paths>.json`; metrics.json is never touched.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import sys

from pfd_tf import config as config_lib, finite_json
from pfd_tf.data.files import DataError
from pfd_tf.run_dir import RunDirError


def evaluate_run(model_dir: str, patterns, which: str = "final", out: str | None = None,
                 allow_train_files: bool = False) -> int:
    """What `pfd-eval` does after parsing its flags; returns the exit status."""
    from absl import logging

    from pfd_tf._keras import tf

    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    try:
        scores = score_run(os.path.abspath(model_dir), patterns, which, allow_train_files)
        path = out or default_out(scores["model_dir"], scores["files"], which)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            finite_json.dump(scores, f, what=path)  # strict JSON, as metrics.json
        os.replace(path + ".tmp", path)
    except (config_lib.ConfigError, DataError, RunDirError) as err:
        print(f"pfd-eval: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(finite_json.finite_only(scores), indent=2))
    print(f"written: {path}", file=sys.stderr)
    return 0


def default_out(model_dir: str, files, which: str) -> str:
    """`model_dir/eval/<first file's name>[+N]-<which>-<8 hex digits of the files' real paths>.json`."""
    digest = hashlib.sha1("\n".join(sorted(os.path.realpath(p) for p in files)).encode()).hexdigest()[:8]
    more = f"+{len(files) - 1}" if len(files) > 1 else ""
    return os.path.join(model_dir, "eval", f"{os.path.basename(files[0])}{more}-{which}-{digest}.json")


def score_run(model_dir: str, patterns, which: str, allow_train_files: bool) -> dict:
    """The run's held-out numbers on the files `patterns` match (see the module's docstring)."""
    from pfd_tf import checkpoints, early_stopping
    from pfd_tf.config.fingerprint import trained_config
    from pfd_tf.data import feature_stats
    from pfd_tf.data.pipeline import check_eval_split
    from pfd_tf.evaluation import Evaluator, summarize
    from pfd_tf.trainer import explain_data_errors

    saved = os.path.join(model_dir, "config.yaml")
    if not os.path.exists(saved):
        raise RunDirError(f"{saved}: missing; --model_dir must be a directory pfd-train trained into")
    if not patterns:
        raise config_lib.ConfigError("--files: give at least one glob of files to score")
    run_config = trained_config(model_dir)  # refuses a config.yaml edited since the run trained
    config = _scoring(run_config, model_dir, [os.path.abspath(p) for p in patterns])
    held_out = check_eval_split(config, apart=False)  # bad rows named by file and line, before anything is scored
    if not allow_train_files:
        trained = _training_files(run_config, model_dir)
        for path in held_out["files"]:
            if os.path.realpath(path) in trained:
                raise config_lib.ConfigError(
                    f"--files: {path} is a training file of the run in {model_dir}: its numbers would flatter the "
                    "model (--allow-train-files scores it anyway)")
    prefix = _checkpoint(model_dir, which, checkpoints, early_stopping)
    config = feature_stats.resolve(config, model_dir)
    evaluator = Evaluator(config)
    results = explain_data_errors(lambda: evaluator(prefix), config, evaluator.dataset_fn.files)
    return {"model_dir": model_dir, "checkpoint": prefix, "which": which, "step": results["step"],
            "files": held_out["files"], "rows": held_out["rows"], "positives": held_out["positives"],
            **summarize(results, evaluator.model.teacher_names, evaluator.model.tasks,
                        evaluator.model.student_names), "eval": results}


def _scoring(config, model_dir: str, patterns):
    """The run's config with `patterns` as its held-out files, every row scored, and its length resolved as
    it trained (the lambda schedule's loss terms depend on it)."""
    from pfd_tf import run_data

    config = dataclasses.replace(config, data=dataclasses.replace(config.data, eval_files=tuple(patterns)),
                                 train=dataclasses.replace(config.train, eval_steps=0))
    record = run_data.read(model_dir)
    rows = sum(entry["rows"] for entry in record.values()) if record else _metrics(model_dir).get("train_rows")
    if not rows:
        from pfd_tf.data.pipeline import count_training_rows

        rows = count_training_rows(config)
    return config_lib.resolve_length(config, rows)


def _metrics(model_dir: str) -> dict:
    try:
        with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _training_files(config, model_dir: str) -> set[str]:
    """Real paths of the files the run trained on: its record, and what its globs match now."""
    from pfd_tf import run_data

    found = set(run_data.read(model_dir) or {})
    patterns = list(config.data.train_files) + (list(config.data.validation_files)
                                                 if config.train.merge_validation else [])
    for pattern in patterns:
        found.update(os.path.realpath(p) for p in glob.glob(config.resolve_path(pattern)))
    return found


def _checkpoint(model_dir: str, which: str, checkpoints, early_stopping) -> str:
    """The checkpoint `--checkpoint` names, read whole (CheckpointError naming the damage otherwise)."""
    if which == "best":
        prefix = early_stopping.best_checkpoint(model_dir)
        if prefix is None:
            raise RunDirError(f"{os.path.join(model_dir, early_stopping.BEST)}: no best checkpoint (the run did not "
                              "stop early: train.early_stopping); --checkpoint final scores its last one")
    else:
        listed = checkpoints.listed(os.path.join(model_dir, "checkpoints"))
        if not listed:
            raise RunDirError(f"{os.path.join(model_dir, 'checkpoints')}: no checkpoint to score")
        prefix = listed[-1]
        if not os.path.exists(os.path.join(model_dir, "metrics.json")):
            print(f"warning: the run in {model_dir} has not finished; scoring its latest checkpoint, {prefix}",
                  file=sys.stderr, flush=True)
    checkpoints.require_intact(prefix)
    return prefix
