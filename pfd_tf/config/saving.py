"""How a config is written back as YAML: `config.yaml` in a run's model_dir, its paths made absolute
(what `pfd_tf.config.fingerprint` hashes and pfd-export reads back)."""
from __future__ import annotations

import os
from typing import Any

import yaml

from pfd_tf.config.schema import Config


def saved_dict(config: Config) -> dict[str, Any]:
    """`config.to_dict()` with its paths made absolute: what `save` writes."""
    raw = config.to_dict()
    for field in ("train_files", "eval_files", "item_files", "validation_files"):
        raw["data"][field] = [config.resolve_path(p) for p in raw["data"][field]]
    if raw["distill"]["teacher_checkpoint"]:
        raw["distill"]["teacher_checkpoint"] = config.resolve_path(raw["distill"]["teacher_checkpoint"])
    if raw["model"]["init_from"]["checkpoint"]:
        raw["model"]["init_from"]["checkpoint"] = config.resolve_path(raw["model"]["init_from"]["checkpoint"])
    for teacher in raw["teachers"]:
        if teacher["checkpoint"]:
            teacher["checkpoint"] = config.resolve_path(teacher["checkpoint"])
    if raw["data"]["vocabulary_dir"]:
        raw["data"]["vocabulary_dir"] = config.resolve_path(raw["data"]["vocabulary_dir"])
    for spec in raw["features"]:
        if spec.get("vocabulary_file"):
            spec["vocabulary_file"] = config.resolve_path(spec["vocabulary_file"])
    return raw


def save(config: Config, path: str) -> None:
    """Writes the config with its paths made absolute as YAML (atomically)."""
    raw = saved_dict(config)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    os.replace(tmp, path)
