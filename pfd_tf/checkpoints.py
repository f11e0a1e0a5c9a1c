"""A run's checkpoints: which one is intact, restoring it, and saving with an error that names the directory.

A checkpoint is the `checkpoint` state file's entry plus two files,
`ckpt-N.index` and `ckpt-N.data-00000-of-00001`.  Either can be lost or cut
short (a full disk, a copy interrupted, a file deleted by hand); TensorFlow
then says `OutOfRangeError`, `DataLossError` or `NotFoundError` from deep in
a restore.  Here:

- `intact_checkpoints` reads every tensor of each checkpoint the state file
  lists (checksums verified, newest first) and returns the newest that reads
  whole, with each newer one skipped and why.  A run resumes from that one,
  after a warning that names what was skipped (`warn_skipped`);
  `CheckpointError` when none is intact.  The check runs before anything is
  written into the model_dir, and `forget` drops the skipped entries from the
  state file only once the restore has succeeded;
- `require_intact`: pfd-export and pfd-eval read exactly the checkpoint they
  were asked for, or name the damage (and the intact ones);
- `save`: a checkpoint that cannot be written (`ResourceExhaustedError`, no
  space left on the device; `OutOfRangeError`, a file-size limit) is a
  `CheckpointError` naming the directory and the last good checkpoint, which
  is kept (the state file moves on only after a save succeeds);
  `out_of_space` says the same of any other write that ran out of space
  (config.yaml, logs, the export).
"""
from __future__ import annotations

import errno
import glob
import os
import shutil
import sys

from pfd_tf._keras import tf
from pfd_tf.run_dir import RunDirError

STATE = "checkpoint"  # the state file TensorFlow's CheckpointManager keeps beside the checkpoints


class CheckpointError(RunDirError):
    """A checkpoint cannot be read or written; the message names it, its directory and the last good one."""


def step_of(prefix: str) -> int:
    """The step of checkpoint `.../ckpt-N` (checkpoints are numbered by step)."""
    return int(prefix.rsplit("-", 1)[1])


def listed(directory: str) -> list[str]:
    """The checkpoints the state file in `directory` lists, oldest first (absolute prefixes)."""
    # Absolute first: TensorFlow joins a relative state entry to the directory it was given, so a relative
    # directory would come back relative and be joined twice (run/checkpoints/run/checkpoints/ckpt-N).
    directory = os.path.abspath(directory)
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    return [p if os.path.isabs(p) else os.path.join(directory, p) for p in paths]


def damage(prefix: str) -> str | None:
    """Why checkpoint `prefix` cannot be restored (its files missing, cut short, corrupt), or None."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_dtype_map():
            reader.get_tensor(key)
    except (tf.errors.OpError, IndexError, ValueError, RuntimeError, OSError) as err:
        kind = {"IndexError": "OutOfRangeError"}.get(type(err).__name__, type(err).__name__)
        return f"{kind}: {_first_line(err)}"
    return None


def intact_checkpoints(directory: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(the newest intact checkpoint in `directory` or None, [(newer damaged checkpoint, why)]).

    CheckpointError if the state file lists checkpoints and none is intact.
    """
    skipped = []
    for prefix in reversed(listed(directory)):
        why = damage(prefix)
        if why is None:
            return prefix, skipped
        skipped.append((prefix, why))
    if skipped:
        damaged = "; ".join(f"{os.path.basename(p)} ({why})" for p, why in skipped)
        raise CheckpointError(f"{directory}: no intact checkpoint to resume from: {damaged}. Nothing was written; "
                              "pass --overwrite to start the run afresh")
    return None, []


def warn_skipped(skipped: list[tuple[str, str]], kept: str) -> None:
    for prefix, why in skipped:
        print(f"warning: checkpoint {prefix} is damaged ({why}); skipped: resuming from {kept}",
              file=sys.stderr, flush=True)


def forget(directory: str, skipped: list[tuple[str, str]]) -> None:
    """Drops the skipped checkpoints from the state file (their files stay, named in the warning)."""
    if not skipped:
        return
    gone = {p for p, _ in skipped}
    kept = [os.path.basename(p) for p in listed(directory) if p not in gone]
    lines = [f'model_checkpoint_path: "{kept[-1]}"'] if kept else []
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in kept]
    path = os.path.join(directory, STATE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


def require_intact(prefix: str) -> None:
    """CheckpointError naming the damage if checkpoint `prefix` cannot be restored, and the intact ones."""
    why = damage(prefix)
    if why is None:
        return
    directory = os.path.dirname(prefix)
    intact = [os.path.basename(p) for p in listed(directory) if p != prefix and damage(p) is None]
    raise CheckpointError(f"checkpoint {prefix} is damaged ({why}); intact checkpoints in {directory}: "
                          f"{', '.join(intact) or 'none'} (--checkpoint names one)")


def restore(checkpoint: tf.train.Checkpoint, prefix: str) -> None:
    """Restores `prefix` into `checkpoint`'s objects; CheckpointError naming it if that fails."""
    try:
        checkpoint.restore(prefix).expect_partial()
    except (tf.errors.OpError, IndexError, ValueError) as err:
        raise CheckpointError(f"checkpoint {prefix} cannot be restored ({type(err).__name__}: "
                              f"{_first_line(err)}); nothing was written") from None


def save(manager: tf.train.CheckpointManager, step: int) -> str:
    """`manager.save` numbered `step`; CheckpointError naming the directory and the last good checkpoint."""
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as err:
        directory = manager.directory
        for partial in glob.glob(os.path.join(directory, f"*-{step}_temp*")):
            shutil.rmtree(partial, ignore_errors=True)  # what the failed save began: frees its space
        reason = _first_line(err).split(";")[-1].split("[Op:")[0].strip()
        raise CheckpointError(
            f"{directory}: cannot write the checkpoint of step {step} ({type(err).__name__}: {reason}; a full disk?). "
            f"The last good checkpoint is kept: {manager.latest_checkpoint or 'none (none was written)'}. "
            "Free space there (or train into a --model_dir on a larger disk) and run the same command again: "
            "the run resumes from it") from None


FULL = {errno.ENOSPC: "No space left on device", errno.EFBIG: "File too large", errno.EDQUOT: "Disk quota exceeded"}


def out_of_space(model_dir: str, err: BaseException) -> str | None:
    """The message for a write into `model_dir` that failed for want of space (an OSError or TensorFlow's
    error saying ENOSPC, EFBIG or EDQUOT) anywhere but a checkpoint (`save` names those); None for any other."""
    if isinstance(err, OSError) and err.errno in FULL:
        where, reason = err.filename or model_dir, err.strerror
    elif isinstance(err, tf.errors.OpError) and any(text in str(err) for text in FULL.values()):
        where, reason = model_dir, next(text for text in FULL.values() if text in str(err))
    else:
        return None
    latest = listed(os.path.join(model_dir, "checkpoints"))
    return (f"{where}: cannot be written ({reason}; a full disk?). The last good checkpoint is kept: "
            f"{latest[-1] if latest else 'none (none was written)'}. Free space there (or train into a --model_dir "
            "on a larger disk) and run the same command again: the run resumes from it")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
