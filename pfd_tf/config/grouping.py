"""Checks of `data.group_by` / `data.groups_per_batch` and of the ranking terms that need them.

Part of `pfd_tf.config` (called by `pfd_tf.config.checks.validate`).  The
grouped batches are `pfd_tf.data.grouped`'s; the ranking terms
(`pointwise_top_k`, `pairwise_bpr`, `listwise_softmax`,
`pfd_tf.distill.ranking_terms`) compare scores within a group, so a config
with one of them and no `data.group_by` is refused here, naming the term.
"""
from __future__ import annotations

from pfd_tf.config.schema import Config, ConfigError, DataFormat
from pfd_tf.config.terms import LISTWISE_SOFTMAX, PAIRWISE_BPR, POINTWISE_TOP_K, RANKING_KINDS


def unique_columns(columns, key: str) -> dict[str, int]:
    """Column name -> its index in `columns` (the config's `key`), each named once and none empty."""
    seen: dict[str, int] = {}
    for i, column in enumerate(columns):
        if not column:
            raise ConfigError(f"{key}[{i}]: must not be empty")
        if column in seen:
            raise ConfigError(f"{key}[{i}]: duplicate column {column!r} (also {key}[{seen[column]}])")
        seen[column] = i
    return seen


def validate_grouping(config: Config) -> None:
    """Each error names the key that must change."""
    data = config.data
    unique_columns(data.group_by, "data.group_by")
    for i, column in enumerate(data.group_by):
        if data.columns and column not in data.columns:
            raise ConfigError(f"data.group_by[{i}]: data.columns has no column {column!r}")
    if data.groups_per_batch < 0:
        raise ConfigError(f"data.groups_per_batch: must be >= 0 (0: about train.batch_size rows), "
                          f"got {data.groups_per_batch}")
    if not data.group_by:
        if data.groups_per_batch:
            raise ConfigError("data.groups_per_batch: set without data.group_by (the columns that name a group)")
    elif data.format is not DataFormat.CSV:
        raise ConfigError(f"data.group_by: grouped batches read CSV files; not available with data.format: "
                          f"{data.format.value}")
    for i, term in enumerate(config.distill.terms):
        if term.kind not in RANKING_KINDS:
            continue
        key = f"distill.terms[{i}]"
        if term.kind == POINTWISE_TOP_K and term.k < 1:
            raise ConfigError(f"{key}.k: must be >= 1 (the teacher's top k of a list are positives), got {term.k}")
        if term.kind == PAIRWISE_BPR and term.margin < 0:
            raise ConfigError(f"{key}.margin: must be >= 0, got {term.margin:g}")
        if term.kind == LISTWISE_SOFTMAX and term.temperature <= 0:
            raise ConfigError(f"{key}.temperature: must be positive, got {term.temperature:g}")
        if not data.group_by:
            raise ConfigError(f"{key}.kind: {term.kind} compares scores within a list, and the lists "
                              "come from data.group_by (the columns naming a request, or a user and a day), "
                              "which is not set")
