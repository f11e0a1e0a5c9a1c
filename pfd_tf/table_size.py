"""The size of each feature's embedding table, in rows and in bytes, and the refusal of tables that cannot fit.

Rows (`vocabulary_size`): as the encoder gives ids (`pfd_tf.features`):
boundaries + 1 for a bucketized number, hash buckets, or the vocabulary's
tokens + 1 (the out-of-vocabulary id); a sequence adds its padding id and
`missing_id` the missing id.  Needs no TensorFlow, so a config is checked
with it as it loads.

Bytes (`check_table_memory`, called when a config is validated): each
table is `rows x dim` float32 values, and the optimizer keeps slots of the
same shape beside it (Adagrad its accumulator, Adam its two moments).
Every run builds each table whole at least once in one process (the
held-out evaluation and the export rebuild the model with plain variables,
even when training shards it over parameter servers), so the sum over the
features of one table each, with its slots, is a lower bound of what a run
needs.  Above this machine's memory (physical, or the container's limit
when lower) the run cannot succeed: the config is refused, naming the key
of the biggest table, before the model is built (where it would end in an
out-of-memory kill or a raw ResourceExhaustedError).  A vocabulary file
counts its lines where the file is there; a vocabulary a run counts
(`min_count`) is not known yet and counts no row.
"""
from __future__ import annotations

import dataclasses
import functools
import os

from pfd_tf.config.features import FeatureKind, FeatureSpec
from pfd_tf.config.schema import Config, ConfigError, Optimizer

FLOAT_BYTES = 4
SLOTS = {Optimizer.ADAGRAD: 1, Optimizer.ADAM: 2}  # slot variables per trained variable
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def vocabulary_size(spec: FeatureSpec) -> int:
    """Rows of the feature's embedding table (one for a numeric feature fed as its value)."""
    if spec.as_value:
        return 1
    missing = 1 if spec.missing_id else 0
    if spec.kind is FeatureKind.NUMERIC and not spec.as_category:
        return len(spec.boundaries) + 1 + missing
    pad = 1 if spec.kind is FeatureKind.SEQUENCE else 0
    if spec.hash_buckets:
        return spec.hash_buckets + pad + missing
    tokens = _file_tokens(resolved_vocabulary_file(spec)) if spec.needs_vocabulary else len(spec.vocabulary)
    return tokens + 1 + pad + missing  # one out-of-vocabulary id


def missing_id(spec: FeatureSpec) -> int:
    """The id of an empty value (`missing_id: true`): the table's last row."""
    return vocabulary_size(spec) - 1


def resolved_vocabulary_file(spec: FeatureSpec) -> str:
    """The absolute path of the vocabulary file a run resolved for `spec` (`pfd_tf.data.vocab`)."""
    if not os.path.isabs(spec.vocabulary_file):
        raise ValueError(f"feature {spec.name!r} (vocabulary_file / min_count) has no resolved vocabulary file yet: "
                         "resolve the config first (pfd_tf.data.vocab.resolve, or a run's with_vocabularies)")
    return spec.vocabulary_file


def _file_tokens(path: str) -> int:
    stat = os.stat(path)
    return _count_lines(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _count_lines(path: str, mtime_ns: int, size: int) -> int:
    del mtime_ns, size  # the cache key: a rewritten file is counted again
    with open(path, "rb") as f:
        data = f.read()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# --------------------------------------------------------------------------
# Bytes
# --------------------------------------------------------------------------
def known_rows(config: Config, spec: FeatureSpec) -> int:
    """`vocabulary_size` as far as it is known when the config loads (a vocabulary to count: 0 rows)."""
    if spec.needs_vocabulary:
        path = config.resolve_path(spec.vocabulary_file) if spec.vocabulary_file else ""
        if not path or not os.path.isfile(path):
            return 0
        spec = dataclasses.replace(spec, vocabulary_file=os.path.abspath(path))
    return vocabulary_size(spec)


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its container's limit (cgroup) when lower."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for path in _CGROUP_LIMITS:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            memory = min(memory, int(text))
    return memory


def _size_key(spec: FeatureSpec) -> str:
    """The key that sets the table's rows."""
    for field in ("hash_buckets", "vocabulary_file", "vocabulary", "min_count"):
        if getattr(spec, field):
            return field
    return "dim"


def check_table_memory(config: Config, memory: int | None = None) -> None:
    """ConfigError naming the biggest table's key when the tables (one each, with the optimizer's slots)
    cannot fit in `memory` bytes (default: `machine_memory()`)."""
    copies = 1 + SLOTS[config.train.optimizer]
    sizes = [(known_rows(config, spec) * spec.dim * FLOAT_BYTES * copies, i) for i, spec in enumerate(config.features)]
    total = sum(size for size, _ in sizes)
    memory = machine_memory() if memory is None else memory
    if total <= memory:
        return
    size, i = max(sizes)
    spec = config.features[i]
    raise ConfigError(
        f"features[{i}].{_size_key(spec)}: the embedding tables need at least {total / 2**30:,.1f} GiB "
        f"(table and {config.train.optimizer.value}'s {copies - 1} slot(s) of the same shape, float32; "
        f"{spec.name!r}, the biggest: {known_rows(config, spec):,} rows x dim {spec.dim}: {size / 2**30:,.1f} GiB), "
        f"more than this machine's {memory / 2**30:,.1f} GiB of memory: make it smaller")
