"""The training files a run trained on, part of its identity beside config.yaml.

A config names its training files by globs; the files they match can change
between a run and its resume (a file deleted or added, rows appended) while
the config stays the same, and the resumed run would then read other rows
than its first part did, silently.  So a run records, in
`model_dir/train_files.json`, each training file it trains on (after
`train.merge_validation`) by real path, with its size in bytes and its rows
(as `training_rows_per_file` counted them).  A resume compares the files it
finds with that record: a change is refused like a config change
(`RunDirError`, exit status 2, naming each file and what changed), or, with
`--allow-data-change`, goes ahead and is recorded in `resumes.jsonl`
(`"data": {path: {"was": ..., "now": ...}}`).
"""
from __future__ import annotations

import json
import os
from typing import Sequence

from pfd_tf.run_dir import RunDirError

RECORD = "train_files.json"


def describe(files: Sequence[str], rows: Sequence[int]) -> dict[str, dict]:
    """{real path: {"bytes", "rows"}} of the training files, in the order given."""
    return {os.path.realpath(path): {"bytes": os.path.getsize(path), "rows": int(n)} for path, n in zip(files, rows)}


def read(model_dir: str) -> dict[str, dict] | None:
    """The record of the run in `model_dir`, or None (a run from before this record, or none)."""
    path = os.path.join(model_dir, RECORD)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunDirError(f"{path}: cannot read the run's record of its training files ({err}); --overwrite "
                          "starts afresh") from None


def write(model_dir: str, files: dict[str, dict]) -> None:
    path = os.path.join(model_dir, RECORD)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"files": files}, f, indent=2)
    os.replace(path + ".tmp", path)


def changes(old: dict[str, dict], new: dict[str, dict]) -> dict[str, dict]:
    """{path: {"was": old entry or None, "now": new entry or None}} for each file removed, added or changed."""
    return {path: {"was": old.get(path), "now": new.get(path)}
            for path in list(old) + [p for p in new if p not in old] if old.get(path) != new.get(path)}


def _said(path: str, change: dict) -> str:
    was, now = change["was"], change["now"]
    if now is None:
        return f"{path}: gone (had {was['rows']} rows)"
    if was is None:
        return f"{path}: new ({now['rows']} rows)"
    return f"{path}: rows {was['rows']} -> {now['rows']}, bytes {was['bytes']} -> {now['bytes']}"


def check(model_dir: str, files: dict[str, dict], allow: bool) -> dict[str, dict]:
    """The changes since the run in `model_dir` recorded its training files (empty: none, or no record).

    RunDirError naming each changed file, unless `allow` (`--allow-data-change`).
    """
    old = read(model_dir)
    found = changes(old, files) if old is not None else {}
    if found and not allow:
        listed = "; ".join(_said(p, c) for p, c in list(found.items())[:8])
        more = f" (and {len(found) - 8} more)" if len(found) > 8 else ""
        raise RunDirError(
            f"{model_dir}: the training files changed since the run trained on them: {listed}{more}. "
            "Nothing was written. Put them back, train into another --model_dir, pass --allow-data-change to "
            "resume on the files as they are now (recorded in resumes.jsonl), or --overwrite to start afresh")
    return found
