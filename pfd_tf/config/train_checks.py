"""The checks of the `train:` section (optimizer, sizes, the divergence guard's margins, visit counting; the
run's length in `schedule`) and of the `cluster:` section (sharding, the data service's port, the watchdog)."""
from __future__ import annotations

from pfd_tf.config.errors import ConfigError
from pfd_tf.config.features import FeatureKind
from pfd_tf.config.schema import Config
from pfd_tf.config.schedule import validate_length


def validate_cluster(config: Config) -> None:
    """`cluster:`: positive shard sizes and port offset, a watchdog timeout >= 0."""
    cluster = config.cluster
    if cluster.min_shard_bytes <= 0:
        raise ConfigError("cluster.min_shard_bytes: must be positive")
    if cluster.max_shards < 0:
        raise ConfigError("cluster.max_shards: must be >= 0 (0: one shard per parameter server)")
    if cluster.data_service_port_offset <= 0:
        raise ConfigError("cluster.data_service_port_offset: must be positive")
    if not cluster.stall_timeout_seconds >= 0:  # NaN too
        raise ConfigError("cluster.stall_timeout_seconds: must be >= 0 (0: no watchdog)")


def validate_train(config: Config) -> None:
    """`train:`: positive sizes and rates, Adam's betas in [0, 1), the run's length, the feature whose visits
    are counted."""
    names = {spec.name for spec in config.features}
    train = config.train
    for field in ("batch_size", "log_every", "eval_batch_size"):
        if getattr(train, field) <= 0:
            raise ConfigError(f"train.{field}: must be positive")
    validate_length(config)
    if train.learning_rate <= 0:
        raise ConfigError("train.learning_rate: must be positive")
    for field in ("divergence_margin", "divergence_training_margin"):
        if getattr(train, field) <= 0:
            raise ConfigError(f"train.{field}: must be positive (nats above the constant predictor's log loss)")
    if train.embedding_l2 < 0:
        raise ConfigError("train.embedding_l2: must be >= 0")
    for field in ("adam_beta_1", "adam_beta_2"):
        if not 0.0 <= getattr(train, field) < 1.0:
            raise ConfigError(f"train.{field}: must be in [0, 1)")
    if train.adam_epsilon <= 0 or train.initial_accumulator < 0:
        field = "adam_epsilon" if train.adam_epsilon <= 0 else "initial_accumulator"
        raise ConfigError(f"train.{field}: must be positive")
    if train.count_visits:
        if train.count_visits not in names:
            raise ConfigError(f"train.count_visits: unknown feature {train.count_visits!r}")
        if config.feature(train.count_visits).kind is not FeatureKind.CATEGORICAL:
            raise ConfigError(f"train.count_visits: {train.count_visits!r} must be a categorical feature")
    for field in ("warmup_steps", "eval_steps", "steps_per_execution"):
        if getattr(train, field) < 0:
            raise ConfigError(f"train.{field}: must be >= 0")
