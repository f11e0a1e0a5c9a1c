"""The config's `cluster:` section: how variables spread over parameter servers, and the watchdog."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """How variables spread over parameter servers (ParameterServerStrategy only).

    Embedding tables of at least `min_shard_bytes` per shard are split, into
    at most `max_shards` shards (0: one per parameter server); smaller ones,
    and every other variable, stay whole.  The tf.data service listens on
    each task's port + `data_service_port_offset` (the dispatcher on the
    chief's, a tf.data worker on each worker's).  When scheduled steps make
    no progress for `stall_timeout_seconds`, the chief asks every task
    whether it answers and stops, naming one that does not
    (`pfd_tf.cluster.stall_watchdog`; 0: never).
    """

    min_shard_bytes: int = 256 << 10
    max_shards: int = 0
    data_service_port_offset: int = 1
    stall_timeout_seconds: float = 60.0
