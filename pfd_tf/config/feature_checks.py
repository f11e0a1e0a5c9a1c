"""The checks of each `features:` entry and of the columns they read: where an id feature's ids come from,
a numeric feature's buckets or normalization, missing values, and one way of reading each column (one serving
input per column; no regular feature reads a privileged feature's column: it would reach the served student)."""
from __future__ import annotations

import re

from pfd_tf.config.errors import ConfigError
from pfd_tf.config.features import Derive, FeatureKind, FeatureSpec, NumericEncoding
from pfd_tf.config.schema import Config
from pfd_tf.config.task_checks import label_columns


def validate_features(config: Config) -> None:
    """Each feature on its own: a unique name, a positive dim, the keys its kind uses and no other."""
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


def validate_shared_empties(config: Config) -> None:
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


def _raw_form(spec: FeatureSpec) -> str:
    """How a feature reads its column: what the serving signature's input for it must be."""
    if spec.kind is FeatureKind.NUMERIC:
        return "float32 numbers"
    if spec.kind is FeatureKind.SEQUENCE:
        return f"{spec.dtype} sequences of max_len {spec.max_len}"
    return f"{spec.dtype} ids"


def validate_columns(config: Config) -> None:
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
