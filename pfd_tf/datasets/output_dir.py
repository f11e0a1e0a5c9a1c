"""The directory `pfd-data` (and the MovieLens writer) write a dataset into, and what they may replace there.

A written config reads its data through globs (``train/*.csv``), so any
other CSV file in the directory joins the run: day files left from an
earlier, longer world (the new test day among them), or a file of the
user's.  So a dataset is only written into an empty (or new) directory;
with ``overwrite`` it replaces what an earlier run wrote, which that run
listed in ``DIR/.pfd-data.json``, and refuses, naming the file, when a
file it did not write would be read by the new config's globs or be
overwritten.

The dataset is first written into a staging directory beside ``DIR``, so
a refusal, or a failure while simulating, leaves ``DIR`` as it was.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from typing import Callable

import yaml

MANIFEST = ".pfd-data.json"  # the files the last write put in the directory, relative to it


class OutputDirError(ValueError):
    """The output directory cannot take the dataset; the message names it (and the file in the way)."""


def write_dataset_into(out_dir: str, write: Callable[[str], str], overwrite: bool = False) -> str:
    """Runs ``write(directory) -> config path`` for ``out_dir``; returns the config's path there.

    Raises OutputDirError, before anything in ``out_dir`` changes, when
    ``out_dir`` is not empty and ``overwrite`` is false, or when a file
    that no earlier write listed in the manifest would be read by the
    written config's data globs or overwritten by a written file.
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise OutputDirError(f"--out {out_dir}: exists and is not a directory")
    if _entries(out_dir) and not overwrite:
        raise OutputDirError(
            f"--out {out_dir}: not empty; the config written there reads its files by globs, so old or "
            "foreign files would join the data. Choose an empty directory, or pass --overwrite to replace "
            f"what pfd-data wrote there before (listed in {MANIFEST})")
    previous = read_manifest(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.pfd-data-", dir=parent)
    try:
        config_path = write(stage)
        written = _files(stage)
        in_the_way = _foreign(out_dir, _data_globs(config_path, stage), written, previous)
        if in_the_way:
            raise OutputDirError(
                f"--out {out_dir}: {os.path.join(out_dir, in_the_way)} was not written by pfd-data (it is not "
                f"in {MANIFEST}) and the new config would {'overwrite' if in_the_way in written else 'read'} "
                "it; move it away or choose another directory")
        for rel in sorted(previous):
            _remove(out_dir, rel)
        for rel in written:
            target = os.path.join(out_dir, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(stage, rel), target)
        _write_manifest(out_dir, written)
        return os.path.join(out_dir, os.path.relpath(config_path, stage))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def read_manifest(out_dir: str) -> set[str]:
    """The files an earlier write listed, relative to ``out_dir`` (none without a manifest)."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        return set()
    try:
        with open(path, encoding="utf-8") as f:
            files = json.load(f)["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise OutputDirError(f"{path}: not a pfd-data manifest ({err}); remove it to start afresh") from None
    for rel in files:
        if not isinstance(rel, str) or os.path.isabs(rel) or os.path.normpath(rel).startswith(".."):
            raise OutputDirError(f"{path}: lists {rel!r}, not a path inside the directory")
    return {os.path.normpath(rel) for rel in files}


def _entries(directory: str) -> list[str]:
    return os.listdir(directory) if os.path.isdir(directory) else []


def _files(directory: str) -> list[str]:
    """Every file under ``directory``, relative to it, sorted."""
    out = []
    for root, _, names in os.walk(directory):
        out += [os.path.relpath(os.path.join(root, n), directory) for n in names]
    return sorted(out)


def _data_globs(config_path: str, stage: str) -> list[str]:
    """The config's data globs that point inside the dataset's directory, relative to it."""
    with open(config_path, encoding="utf-8") as f:
        data = (yaml.safe_load(f) or {}).get("data", {})
    base = os.path.dirname(config_path)
    out = []
    for key in ("train_files", "eval_files"):
        for pattern in data.get(key) or []:
            rel = os.path.relpath(os.path.normpath(os.path.join(base, pattern)), stage)
            if not rel.startswith(".."):
                out.append(rel)
    return out


def _foreign(out_dir: str, globs: list[str], written: list[str], previous: set[str]) -> str | None:
    """The first file in ``out_dir`` not listed in the manifest that the globs match or a written file replaces."""
    if not os.path.isdir(out_dir):
        return None
    candidates = {rel for rel in written if os.path.lexists(os.path.join(out_dir, rel))}
    for pattern in globs:
        candidates |= {os.path.relpath(p, out_dir) for p in glob.glob(os.path.join(out_dir, pattern))
                       if not os.path.isdir(p)}
    foreign = sorted(c for c in candidates if c not in previous)
    return foreign[0] if foreign else None


def _remove(out_dir: str, rel: str) -> None:
    """Removes one file an earlier write listed, and the directories it leaves empty."""
    path = os.path.join(out_dir, rel)
    if os.path.lexists(path) and not os.path.isdir(path):
        os.remove(path)
    parent = os.path.dirname(path)
    while parent != out_dir and os.path.isdir(parent) and not os.listdir(parent):
        os.rmdir(parent)
        parent = os.path.dirname(parent)


def _write_manifest(out_dir: str, files: list[str]) -> None:
    tmp = os.path.join(out_dir, MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"written_by": "pfd-data", "files": files}, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, MANIFEST))
