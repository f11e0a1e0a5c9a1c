"""What a run trained, recorded beside its config.yaml, so that a config.yaml edited by hand is refused, not exported.

`model_dir/config.yaml` is the run's identity (`pfd_tf.run_dir`), and
pfd-export rebuilds the student from it.  An edit by hand (a boundary moved,
`hash_buckets` changed) would export a graph that encodes the raw values
otherwise than the checkpoint learned them, without a word, or end in a raw
traceback when the checkpoint's tables no longer fit.  So `save_config`
writes config.yaml and then, beside it, `config.fingerprint.json`: the
sha256 of config.yaml's bytes and the value of each key (flattened as the
run's identity is, e.g. `features.price.boundaries`).  `trained_config`
reads config.yaml back and refuses (ConfigError) one whose keys no longer
hold those values, naming each.  An edit that changes no value (a comment,
the layout) passes; a run written before fingerprints existed has none and
is read as it is.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from pfd_tf import config as config_lib, run_dir
from pfd_tf.config import Config, ConfigError

CONFIG = "config.yaml"
FINGERPRINT = "config.fingerprint.json"


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def save_config(config: Config, model_dir: str) -> None:
    """Writes `model_dir/config.yaml` (`config.save`), then its fingerprint (both atomically)."""
    path = os.path.join(model_dir, CONFIG)
    config_lib.save(config, path)
    record = {"config": CONFIG, "sha256": _sha256(path), "keys": run_dir.identity(config)}
    target = os.path.join(model_dir, FINGERPRINT)
    with open(target + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.replace(target + ".tmp", target)


def _recorded(model_dir: str) -> dict[str, Any] | None:
    path = os.path.join(model_dir, FINGERPRINT)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        if isinstance(record["sha256"], str) and isinstance(record["keys"], dict):
            return record
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise ConfigError(f"{path}: cannot be read, so {os.path.join(model_dir, CONFIG)} cannot be checked against "
                      "what its run trained")


def changed_keys(model_dir: str, config: Config) -> dict[str, tuple[Any, Any]]:
    """`{key: (value trained, value in config.yaml now)}` for each key of `config` (read from `model_dir`'s
    config.yaml) that differs from the fingerprint; empty when none does or there is no fingerprint."""
    record = _recorded(model_dir)
    if record is None or record["sha256"] == _sha256(os.path.join(model_dir, CONFIG)):
        return {}
    # Through JSON, as the record went: tuples are lists there.
    was, now = record["keys"], json.loads(json.dumps(run_dir.identity(config)))
    return {key: (was.get(key), now.get(key)) for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key)}


def trained_config(model_dir: str) -> Config:
    """The config of the run in `model_dir`, once its config.yaml is seen to hold what the run trained.

    ConfigError naming config.yaml and each key edited since the run wrote it
    (and the values its checkpoints were trained with).
    """
    path = os.path.join(model_dir, CONFIG)
    config = config_lib.load(path)
    changed = changed_keys(model_dir, config)
    if changed:
        listed = "; ".join(f"{key}: {was!r} -> {now!r}" for key, (was, now) in list(changed.items())[:8])
        more = f" (and {len(changed) - 8} more)" if len(changed) > 8 else ""
        raise ConfigError(f"{path}: edited since its run trained: {listed}{more}. The checkpoints were trained with "
                          f"the values {FINGERPRINT} records: put them back, or train a run with the new values")
    return config
