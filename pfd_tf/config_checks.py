"""Cross-field checks of a built config, and what a run resolves from its data (length, feature statistics).

Part of `pfd_tf.config` (which re-exports every public name here): each
error names the key that must change, e.g. `features[3].boundaries` or
`distill.swap_step`.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Mapping

from pfd_tf.config_networks import validate_networks
from pfd_tf.config_task_checks import label_columns, validate_tasks
from pfd_tf.config_terms_checks import check_term_starts, resolve_term_starts, validate_terms
from pfd_tf.config_crossdistil_checks import validate_crossdistil
from pfd_tf.config_schema import (
    Architecture, Config, ConfigError, DataFormat, FeatureKind, FeatureSpec, Mode, Normalization, NumericEncoding, Sharing,
    Side)
from pfd_tf.config_schema import Derive
from pfd_tf.table_size import check_table_memory



def validate(config: Config) -> None:
    """Cross-field checks; each error names the key that must change."""
    names: dict[str, int] = {}
    for i, spec in enumerate(config.features):
        key = f"features[{i}]"
        if not spec.name:
            raise ConfigError(f"{key}.name: must not be empty")
        if spec.name in names:
            raise ConfigError(
                f"{key}.name: duplicate feature name {spec.name!r} "
                f"(also features[{names[spec.name]}])"
            )
        names[spec.name] = i
        if spec.dim <= 0:
            raise ConfigError(f"{key}.dim: must be positive, got {spec.dim}")
        if spec.dtype not in ("string", "int64"):
            raise ConfigError(f"{key}.dtype: unknown value {spec.dtype!r} (choose string or int64)")
        if spec.kind is FeatureKind.NUMERIC:
            _validate_numeric(spec, key)
            if spec.max_len:
                raise ConfigError(f"{key}.max_len: not used by a numeric feature")
            for field in () if spec.as_category else _ID_SOURCES:
                if getattr(spec, field):
                    raise ConfigError(f"{key}.{field}: not used by a numeric feature with boundaries or encoding: "
                                      "value (without boundaries, one id per integer bin floor(transform(x)))")
            if spec.as_category:
                _validate_id_source(spec, key)
        else:
            _validate_id_source(spec, key)
            if spec.boundaries:
                raise ConfigError(f"{key}.boundaries: only numeric features use boundaries")
            for field in ("transform", "encoding", "mean", "std"):
                if getattr(spec, field) != getattr(_NUMERIC_ONLY, field):
                    raise ConfigError(f"{key}.{field}: only numeric features use {field}")
            if spec.kind is FeatureKind.SEQUENCE and spec.max_len <= 0:
                raise ConfigError(f"{key}.max_len: a sequence feature needs max_len > 0")
            if spec.kind is FeatureKind.CATEGORICAL and spec.max_len:
                raise ConfigError(f"{key}.max_len: only sequence features use max_len")
        _validate_missing_and_derive(spec, key)

    validate_tasks(config)
    _validate_columns(config)
    _validate_data_layout(config)
    _validate_shared_empties(config)
    check_table_memory(config)
    data = config.data
    if not data.train_files:
        raise ConfigError("data.train_files: list at least one file or glob")
    if not data.eval_files:
        raise ConfigError("data.eval_files: list at least one file or glob")
    for label, key in label_columns(config).items():
        if label in names:
            raise ConfigError(f"{key}: {label!r} is also declared as a feature")

    model = config.model
    for field in ("student_features", "student_private_features"):
        for j, name in enumerate(getattr(model, field)):
            if name not in names:
                raise ConfigError(f"model.{field}[{j}]: unknown feature {name!r}")
            if config.feature(name).privileged:
                raise ConfigError(
                    f"model.{field}[{j}]: {name!r} is a privileged feature and cannot be "
                    "wired into the student (it is absent at serving time)"
                )
    if model.student_private_features and model.sharing is not Sharing.SHARED:
        raise ConfigError(
            "model.student_private_features: only meaningful with model.sharing: shared"
        )
    if not config.student_features:
        raise ConfigError("features: the student has no regular feature to read")
    for field in ("student_tower", "teacher_tower", "big_teacher_tower"):
        if any(u <= 0 for u in getattr(model, field)):
            raise ConfigError(f"model.{field}: layer sizes must be positive")
    if not 0.0 <= model.dropout < 1.0:
        raise ConfigError("model.dropout: must be in [0, 1)")
    if not 0.0 <= model.batch_norm_momentum < 1.0:
        raise ConfigError("model.batch_norm_momentum: must be in [0, 1)")
    choices = [n.value for n in Normalization]
    if model.teacher_normalization and model.teacher_normalization not in choices:
        raise ConfigError(f"model.teacher_normalization: unknown value {model.teacher_normalization!r} "
                          f"(choose one of: {', '.join(choices)}; empty: model.normalization)")
    if model.embedding_init_scale <= 0:
        raise ConfigError(f"model.embedding_init_scale: must be a positive number, got {model.embedding_init_scale}")
    _validate_behaviour(config)
    if model.architecture is Architecture.TWO_TOWER:
        sides = {f.side for f in config.student_features}
        if Side.ITEM not in sides or not sides - {Side.ITEM}:
            raise ConfigError(
                "model.architecture: two_tower needs student features with side: item and "
                "with side: user (or context)"
            )
        for field in ("user_tower", "item_tower"):
            units = getattr(model, field)
            if not units or any(u <= 0 for u in units):
                raise ConfigError(f"model.{field}: layer sizes must be positive")
        if model.user_tower[-1] != model.item_tower[-1]:
            raise ConfigError("model.item_tower: its last size must equal model.user_tower's (inner product)")
        if model.inner_product_scale <= 0:
            raise ConfigError("model.inner_product_scale: must be positive")
        if model.retrieval_k <= 0:
            raise ConfigError("model.retrieval_k: must be positive")
        if not config.data.item_files and config.data.format is not DataFormat.CSV:
            raise ConfigError("data.item_files: a two_tower model on TFRecord data needs a CSV item file")

    distill = config.distill
    if not 0.0 <= distill.lambda_ <= 1.0:
        raise ConfigError(f"distill.lambda: must be in [0, 1], got {distill.lambda_}")
    if distill.swap_step < 0:
        raise ConfigError("distill.swap_step: must be >= 0")
    if distill.temperature <= 0:
        raise ConfigError("distill.temperature: must be positive")
    if distill.mode in (Mode.LUPI, Mode.PFD, Mode.PFD_MD) and not config.privileged_features:
        raise ConfigError(
            f"distill.mode: {distill.mode.value} needs at least one feature with role: privileged"
        )
    if distill.teacher_checkpoint:
        if distill.mode is Mode.BASELINE:
            raise ConfigError("distill.teacher_checkpoint: the baseline has no teacher")
        if distill.mode is Mode.TEACHERS:
            raise ConfigError("distill.teacher_checkpoint: with a teachers: list, set each pre-trained "
                              "teacher's teachers[i].checkpoint")
        if model.sharing is not Sharing.INDEPENDENT:
            raise ConfigError(
                "distill.teacher_checkpoint: a pre-trained teacher (Ind&Async) has its own "
                "embeddings; set model.sharing: independent"
            )
    if distill.teacher_only:
        if distill.mode is Mode.BASELINE:
            raise ConfigError("distill.teacher_only: the baseline has no teacher")
        if distill.teacher_checkpoint:
            raise ConfigError("distill.teacher_only: cannot train a teacher that distill.teacher_checkpoint freezes")
        # A teachers: list pre-trained in one run may share tables: each is restored with its own later.
        if model.sharing is not Sharing.INDEPENDENT and distill.mode is not Mode.TEACHERS:
            raise ConfigError(
                "distill.teacher_only: a teacher pre-trained for Ind&Async has its own embeddings; "
                "set model.sharing: independent"
            )

    validate_networks(config)
    validate_terms(config)
    validate_crossdistil(config)

    cluster = config.cluster
    if cluster.min_shard_bytes <= 0:
        raise ConfigError("cluster.min_shard_bytes: must be positive")
    if cluster.max_shards < 0:
        raise ConfigError("cluster.max_shards: must be >= 0 (0: one shard per parameter server)")
    if cluster.data_service_port_offset <= 0:
        raise ConfigError("cluster.data_service_port_offset: must be positive")
    if not cluster.stall_timeout_seconds >= 0:  # NaN too
        raise ConfigError("cluster.stall_timeout_seconds: must be >= 0 (0: no watchdog)")

    train = config.train
    for field in ("batch_size", "log_every", "eval_batch_size"):
        if getattr(train, field) <= 0:
            raise ConfigError(f"train.{field}: must be positive")
    _validate_length(config)
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


_NUMERIC_ONLY = FeatureSpec("", FeatureKind.NUMERIC, 1)  # the defaults of the numeric-only keys


def _validate_numeric(spec: FeatureSpec, key: str) -> None:
    """A numeric feature: boundaries (or a vocabulary of its integer bins, `as_category`) for
    `encoding: bucket`; mean and std (or neither) for `encoding: value`."""
    if spec.encoding is NumericEncoding.VALUE:
        if spec.boundaries:
            raise ConfigError(f"{key}.boundaries: not used with encoding: value (the value itself is fed, "
                              "normalized); remove them, or use encoding: bucket")
        if spec.std < 0:
            raise ConfigError(f"{key}.std: must be positive (or unset: computed from the training files)")
        if spec.mean and not spec.std:
            raise ConfigError(f"{key}.std: set with mean (or leave both unset: computed from the training files)")
        return
    if not spec.boundaries and not spec.as_category:
        raise ConfigError(f"{key}.boundaries: a numeric feature needs boundaries (or encoding: value); or, for one "
                          "id per integer bin floor(transform(x)), min_count, vocabulary_file, vocabulary or hash_buckets")
    if any(b >= a for b, a in zip(spec.boundaries, spec.boundaries[1:])):
        raise ConfigError(f"{key}.boundaries: must be strictly increasing")
    for field in ("mean", "std"):
        if getattr(spec, field):
            raise ConfigError(f"{key}.{field}: only used with encoding: value")


_ID_SOURCES = ("hash_buckets", "vocabulary", "vocabulary_file", "min_count")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _validate_id_source(spec: FeatureSpec, key: str) -> None:
    """Where an id feature's ids come from: exactly one of `_ID_SOURCES`."""
    given = [field for field in _ID_SOURCES if getattr(spec, field)]
    if len(given) != 1:
        what = "a numeric feature with integer bins" if spec.as_category else f"a {spec.kind.value} feature"
        has = f" (it has {' and '.join(given)})" if given else ""
        raise ConfigError(f"{key}.{given[1] if len(given) > 1 else 'hash_buckets'}: {what} needs exactly one of "
                          f"hash_buckets, vocabulary, vocabulary_file or min_count{has}")
    if spec.hash_buckets < 0:
        raise ConfigError(f"{key}.hash_buckets: must be positive")
    if spec.min_count < 0:
        raise ConfigError(f"{key}.min_count: must be positive (tokens seen fewer times are out of vocabulary)")
    if spec.needs_vocabulary and not _SAFE_NAME.fullmatch(spec.name):
        raise ConfigError(f"{key}.name: {spec.name!r} cannot name the run's copy of its vocabulary, "
                          "model_dir/vocabularies/<name>.txt: use letters, digits, '_', '.' and '-'")
    if len(set(spec.vocabulary)) != len(spec.vocabulary):
        raise ConfigError(f"{key}.vocabulary: has duplicate entries")


def _validate_missing_and_derive(spec: FeatureSpec, key: str) -> None:
    """`missing_id`: numeric (not encoding: value) and string categorical features; `derive`: string categorical."""
    if spec.missing_id:
        if spec.kind is FeatureKind.SEQUENCE:
            raise ConfigError(f"{key}.missing_id: a sequence feature's empty value is padding (id 0), not missing")
        if spec.as_value:
            raise ConfigError(f"{key}.missing_id: not used with encoding: value (its one row has no id to give)")
        if spec.kind is FeatureKind.CATEGORICAL and spec.dtype != "string":
            raise ConfigError(f"{key}.missing_id: only string categorical features (dtype: string) and numeric "
                              "ones have a missing id")
        if spec.default:
            raise ConfigError(f"{key}.default: not used with missing_id: true (an empty field gets the missing id)")
    if spec.derive is not Derive.NONE and (spec.kind is not FeatureKind.CATEGORICAL or spec.dtype != "string"):
        raise ConfigError(f"{key}.derive: only a categorical feature with dtype: string derives its value "
                          f"({spec.derive.value} reads a YYMMDDHH text)")


def _validate_shared_empties(config: Config) -> None:
    """Numeric features that share a column agree on `missing_id` (the parse reads its empty fields one way)."""
    first: dict[str, int] = {}
    for i, spec in enumerate(config.features):
        if spec.kind is not FeatureKind.NUMERIC:
            continue
        j = first.setdefault(spec.source, i)
        other = config.features[j]
        if other.missing_id != spec.missing_id:
            raise ConfigError(f"features[{i}].missing_id: {spec.name!r} reads column {spec.source!r}, whose empty "
                              f"fields features[{j}] ({other.name!r}) reads otherwise: their missing_id must agree")


def _validate_data_layout(config: Config) -> None:
    """`data.csv_delimiter` is one character; `data.columns` (header-less CSV) names every column read, once."""
    data = config.data
    if len(data.csv_delimiter) != 1 or data.csv_delimiter in "\r\n\"":
        raise ConfigError(f"data.csv_delimiter: must be one character other than a quote or a line break, got "
                          f"{data.csv_delimiter!r} (a tab: csv_delimiter: \"\\t\", in double quotes)")
    if data.shuffle_buffer <= 0:
        raise ConfigError(f"data.shuffle_buffer: must be positive (the rows of a window shuffled together), "
                          f"got {data.shuffle_buffer}")
    if data.vocabulary_dir and not any(spec.min_count for spec in config.features):
        raise ConfigError("data.vocabulary_dir: no feature has min_count (only those read their vocabulary there)")
    if not data.columns:
        return
    if data.format is not DataFormat.CSV:
        raise ConfigError("data.columns: names the columns of header-less CSV files; not used with data.format: "
                          f"{data.format.value}")
    seen: dict[str, int] = {}
    for j, name in enumerate(data.columns):
        if not name:
            raise ConfigError(f"data.columns[{j}]: must not be empty")
        if name in seen:
            raise ConfigError(f"data.columns[{j}]: duplicate column {name!r} (also data.columns[{seen[name]}])")
        seen[name] = j
    for label, key in label_columns(config).items():
        if label not in seen:
            raise ConfigError(f"data.columns: the label column {label!r} ({key}) is not among them")
    for i, spec in enumerate(config.features):
        if spec.source not in seen:
            raise ConfigError(f"data.columns: has no column {spec.source!r}, which features[{i}] ({spec.name!r}) reads")
    if config.model.architecture is Architecture.TWO_TOWER:
        raise ConfigError("data.columns: a two_tower model reads its item files by their header; "
                          "header-less files are not supported there")


def features_needing_stats(config: Config) -> tuple[FeatureSpec, ...]:
    """The value features whose mean and std the training files must give (`needs_stats`)."""
    return tuple(spec for spec in config.features if spec.needs_stats)


def with_feature_stats(config: Config, stats: Mapping[str, Mapping[str, float]]) -> Config:
    """The config with the mean and std of each value feature that left them unset, from `stats`.

    `stats` maps feature name to {"mean", "std"} of its transformed values
    over the training files (`pfd_tf.data.feature_stats`, what
    `model_dir/feature_stats.json` holds).  A std of 0 (a constant column)
    becomes 1, so nothing divides by zero: the feature is then 0 on every
    training row.  Features that set their own mean and std keep them.
    Raises ConfigError naming the feature when `stats` lacks one it needs.
    """
    features = []
    for i, spec in enumerate(config.features):
        if spec.needs_stats:
            found = stats.get(spec.name)
            if not isinstance(found, Mapping) or not {"mean", "std"} <= set(found):
                raise ConfigError(f"features[{i}].std: no mean and std for {spec.name!r} in the feature statistics")
            mean, std = float(found["mean"]), float(found["std"])
            if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
                raise ConfigError(f"features[{i}].std: bad statistics for {spec.name!r}: mean {mean}, std {std}")
            spec = dataclasses.replace(spec, mean=mean, std=std if std > 0 else 1.0)
        features.append(spec)
    return dataclasses.replace(config, features=tuple(features))


def _raw_form(spec: FeatureSpec) -> str:
    """How a feature reads its column: what the serving signature's input for it must be."""
    if spec.kind is FeatureKind.NUMERIC:
        return "float32 numbers"
    if spec.kind is FeatureKind.SEQUENCE:
        return f"{spec.dtype} sequences of max_len {spec.max_len}"
    return f"{spec.dtype} ids"


def _validate_columns(config: Config) -> None:
    """Columns: none read by a regular and a privileged feature alike, or by a feature and the label;
    features that share a column read it the same way (one serving input per column)."""
    privileged = {spec.source: spec.name for spec in config.features if spec.privileged}
    first_reader: dict[str, int] = {}
    labels = label_columns(config)
    for i, spec in enumerate(config.features):
        key = f"features[{i}].column"
        if spec.source in labels:
            raise ConfigError(f"{key}: {spec.name!r} reads the label column {spec.source!r}")
        if not spec.privileged and spec.source in privileged:
            raise ConfigError(
                f"{key}: regular feature {spec.name!r} reads column {spec.source!r}, the column of "
                f"privileged feature {privileged[spec.source]!r}: it would reach the served student")
        j = first_reader.setdefault(spec.source, i)
        other = config.features[j]
        if _raw_form(other) != _raw_form(spec):
            raise ConfigError(
                f"{key}: {spec.name!r} reads column {spec.source!r} as {_raw_form(spec)}, but "
                f"features[{j}] ({other.name!r}) reads it as {_raw_form(other)}")


DEFAULT_STEPS = 1000  # a run's length when neither train.steps nor train.epochs is set


def _validate_length(config: Config) -> None:
    train, distill = config.train, config.distill
    if train.steps < 0:
        raise ConfigError("train.steps: must be positive")
    if train.epochs < 0:
        raise ConfigError("train.epochs: must be positive")
    if train.steps and train.epochs:
        raise ConfigError("train.epochs: set the run's length by train.steps or by train.epochs, not both")
    for key, value in (("train.warmup_fraction", train.warmup_fraction), ("distill.swap_fraction", distill.swap_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{key}: a fraction of the run's steps, in [0, 1), got {value}")
    if train.warmup_steps and train.warmup_fraction:
        raise ConfigError("train.warmup_fraction: set the warm-up by train.warmup_steps or by train.warmup_fraction, not both")
    if distill.swap_step and distill.swap_fraction:
        raise ConfigError("distill.swap_fraction: set the swapping step by distill.swap_step or by distill.swap_fraction, not both")
    if train.steps:
        check_schedule(config)


def refuse_zero_length(raw_train) -> None:
    """ConfigError when the `train:` mapping given (parsed YAML, overrides applied) sets train.steps or
    train.epochs to 0 and neither is positive: left out, they mean DEFAULT_STEPS, but a 0 written (e.g.
    `--set train.steps=0`, which also drops the file's train.epochs) asks for a run of no step."""
    if not isinstance(raw_train, Mapping):
        return
    for key in ("steps", "epochs"):
        if key in raw_train:
            raise ConfigError(f"train.{key}: must be positive, got {raw_train[key]!r} (leave train.steps and "
                              f"train.epochs out for the default of {DEFAULT_STEPS} steps)")


def check_schedule(config: Config, length: str = "train.steps") -> None:
    """The warm-up and the swapping step fall inside the run (`config.train.steps`, resolved)."""
    train, distill = config.train, config.distill
    steps = train.steps
    if train.warmup_steps > steps:
        raise ConfigError(f"train.warmup_steps: {train.warmup_steps} is past the run's end ({length}: "
                          f"{steps} steps): the learning rate would never reach its peak")
    distilling = distill.mode is not Mode.BASELINE and not distill.teacher_only
    if distilling and distill.swap_step >= steps:
        raise ConfigError(f"distill.swap_step: {distill.swap_step} is at or past the run's end ({length}: "
                          f"{steps} steps): lambda would be 0 for the whole run")
    if distilling:
        check_term_starts(config, length)


def resolve_length(config: Config, train_rows: int) -> Config:
    """The config with the run's length in steps: train.epochs, train.warmup_fraction and
    distill.swap_fraction turned into train.steps, train.warmup_steps and distill.swap_step (and each
    term's schedule.start_fraction into its start_step).

    `train_rows` is the number of training rows (counted once when the run
    starts).  Raises ConfigError when the warm-up or the swapping step
    falls outside the run.
    """
    train, distill = config.train, config.distill
    steps, length = train.steps, "train.steps"
    if train.epochs:
        steps = max(1, round(train.epochs * train_rows / train.batch_size))
        length = f"train.epochs {train.epochs:g} of {train_rows} rows"
    warmup = round(train.warmup_fraction * steps) if train.warmup_fraction else train.warmup_steps
    swap = round(distill.swap_fraction * steps) if distill.swap_fraction else distill.swap_step
    resolved = dataclasses.replace(
        config,
        train=dataclasses.replace(train, steps=steps, epochs=0.0, warmup_steps=warmup, warmup_fraction=0.0),
        distill=resolve_term_starts(dataclasses.replace(distill, swap_step=swap, swap_fraction=0.0), steps),
    )
    check_schedule(resolved, length)
    return resolved


def _validate_behaviour(config: Config) -> None:
    model = config.model
    names = {f.name for f in config.features}
    lengths = set()
    for field in ("behaviour_items", "behaviour_side"):
        for j, name in enumerate(getattr(model, field)):
            key = f"model.{field}[{j}]"
            if name not in names:
                raise ConfigError(f"{key}: unknown feature {name!r}")
            spec = config.feature(name)
            if spec.kind is not FeatureKind.SEQUENCE:
                raise ConfigError(f"{key}: {name!r} must be a sequence feature")
            if spec.privileged:
                raise ConfigError(f"{key}: {name!r} is privileged; the behaviour sequence is shared with the student")
            if spec.side is Side.ITEM:
                raise ConfigError(f"{key}: {name!r} has side: item; the behaviour sequence describes the user")
            lengths.add(spec.max_len)
    if model.behaviour_side and not model.behaviour_items:
        raise ConfigError("model.behaviour_items: list the item features of the behaviour sequence")
    if len(lengths) > 1:
        raise ConfigError("model.behaviour_items: every behaviour feature must have the same max_len")
    for j, name in enumerate(model.teacher_target_features):
        key = f"model.teacher_target_features[{j}]"
        if name not in names:
            raise ConfigError(f"{key}: unknown feature {name!r}")
        spec = config.feature(name)
        if spec.privileged or spec.side is not Side.ITEM or spec.kind is FeatureKind.SEQUENCE:
            raise ConfigError(f"{key}: {name!r} must be a regular, non-sequence feature with side: item (the candidate)")
    if model.teacher_target_features and not model.behaviour_items:
        raise ConfigError("model.teacher_target_features: needs a behaviour sequence (model.behaviour_items) to attend over")
    if model.attention_heads <= 0 or model.attention_head_dim <= 0:
        raise ConfigError("model.attention_heads: heads and head dimension must be positive")

