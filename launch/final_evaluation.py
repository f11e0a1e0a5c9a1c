"""After the chief: the sidecar evaluator's view of the final checkpoint, before the cluster stops.

The chief's exit ends a run, but the evaluator (its own process, reading
checkpoints from disk) can be behind it: on a loaded machine it may not have
evaluated the final checkpoint yet, and stopping it with the cluster then
loses the run's last `sidecar_metrics.jsonl` line (the evaluation a user
reads the finished run by).  The launcher waits, boundedly, until it is there.
"""
from __future__ import annotations

import json
import os
import re

FINAL_EVALUATION_SECONDS = 300.0  # the longest the launcher waits for it after the chief finished
_STATE = re.compile(r'^model_checkpoint_path: "(.*)"', re.M)


def latest_checkpoint(model_dir: str) -> str | None:
    """The name (`ckpt-N`) of the run's latest checkpoint, from its CheckpointManager's state file, or None."""
    try:
        with open(os.path.join(model_dir, "checkpoints", "checkpoint"), encoding="utf-8") as f:
            found = _STATE.search(f.read())
    except OSError:
        return None
    return os.path.basename(found.group(1)) if found else None


def final_checkpoint_evaluated(model_dir: str) -> bool:
    """Whether `sidecar_metrics.jsonl` holds the run's latest checkpoint (True when there is none to wait for)."""
    final = latest_checkpoint(model_dir)
    if final is None:
        return True
    try:
        with open(os.path.join(model_dir, "sidecar_metrics.jsonl"), encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except (OSError, ValueError):  # unreadable, or not UTF-8: not evaluated (the wait is bounded)
        return False
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written, or a damaged one
        checkpoint = record.get("checkpoint") if isinstance(record, dict) else None
        if isinstance(checkpoint, str) and os.path.basename(checkpoint) == final:
            return True
    return False
