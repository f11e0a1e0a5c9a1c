"""Typed, frozen experiment configuration, loaded from YAML and validated once.

A config has six sections: `data` (files and label), `features` (the schema:
which features exist and which are privileged), `model` (towers and how the
teacher and student share input embeddings), `distill` (Eq. (5) and
Algorithm 1 of the PFD paper: mode, lambda, swapping step, temperature),
`train` (optimizer, batch size, steps) and `cluster` (sharding over
parameter servers).  Every error names the offending key,
e.g. `features[3].kind` or `distill.lambda`, so a typo never passes silently.
"""
from __future__ import annotations

import dataclasses
import enum
import math
import os
from typing import Any, Mapping, Sequence

import yaml


class ConfigError(ValueError):
    """A config value is missing, unknown or inconsistent; the message names the key."""


class FeatureKind(str, enum.Enum):
    CATEGORICAL = "categorical"  # one id per row, by vocabulary or hash buckets
    NUMERIC = "numeric"  # discretized by boundaries, as in the paper (Section 3, footnote 1)
    SEQUENCE = "sequence"  # a list of ids, padded/truncated to max_len


class Role(str, enum.Enum):
    REGULAR = "regular"  # available at training and at serving time
    PRIVILEGED = "privileged"  # available at training time only (post-event, interacted)


class Side(str, enum.Enum):
    USER = "user"
    ITEM = "item"
    CONTEXT = "context"


class Mode(str, enum.Enum):
    """Which teacher trains beside the student (Table 4 of the PFD paper)."""

    BASELINE = "baseline"  # the student alone, no teacher
    LUPI = "lupi"  # teacher sees privileged features only, Eq. (2)
    MD = "md"  # teacher sees regular features with a bigger tower, Eq. (1)
    PFD = "pfd"  # teacher sees regular + privileged features, student's tower, Eq. (5)
    PFD_MD = "pfd_md"  # regular + privileged features and a bigger tower


class Sharing(str, enum.Enum):
    """How teacher and student share input embeddings (Tables 7 and 8)."""

    SHARED = "shared"  # Share&Sync (Share*&Sync with `student_private_features`)
    INDEPENDENT = "independent"  # Ind&Sync, or Ind&Async with a pre-trained teacher


class Architecture(str, enum.Enum):
    """The student's network (and the PFD teacher's, which mirrors it)."""

    MLP = "mlp"  # one tower over all its features (fine-grained ranking, Section 5.3)
    TWO_TOWER = "two_tower"  # user tower . item tower, Eq. (3) (coarse-grained ranking, Section 5.2)


class DataFormat(str, enum.Enum):
    CSV = "csv"
    TFRECORD = "tfrecord"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One input feature.

    `column` is the data column the feature reads (its name by default); two
    features may read one column, which is why export checks columns, not
    names, for privileged inputs.
    """

    name: str
    kind: FeatureKind
    dim: int
    role: Role = Role.REGULAR
    side: Side = Side.CONTEXT
    column: str = ""
    dtype: str = "string"  # raw type of categorical/sequence ids: string or int64
    hash_buckets: int = 0
    vocabulary: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()
    max_len: int = 0
    default: float = 0.0  # numeric value used for an empty CSV field

    @property
    def source(self) -> str:
        return self.column or self.name

    @property
    def privileged(self) -> bool:
        return self.role is Role.PRIVILEGED


@dataclasses.dataclass(frozen=True)
class DataConfig:
    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    label: str
    format: DataFormat = DataFormat.CSV
    sequence_delimiter: str = "|"
    csv_delimiter: str = ","
    shuffle_buffer: int = 10_000
    # Keep the parsed, encoded training rows in memory after the first epoch (data that
    # fits in RAM and is read for several epochs); rows are reshuffled every epoch.
    cache: bool = False
    # two_tower: the items the retrieval index holds (CSV globs; default: the train files)
    item_files: tuple[str, ...] = ()
    item_id_column: str = "item_id"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    sharing: Sharing = Sharing.SHARED
    student_private_features: tuple[str, ...] = ()
    student_features: tuple[str, ...] = ()  # empty: every regular feature
    student_tower: tuple[int, ...] = (512, 256, 128)
    teacher_tower: tuple[int, ...] = (512, 256, 128)  # lupi and pfd
    big_teacher_tower: tuple[int, ...] = (8192, 4096, 2048, 1024, 512, 256, 128)  # md, pfd_md
    leaky_relu_alpha: float = 0.01
    dropout: float = 0.0
    architecture: Architecture = Architecture.MLP
    user_tower: tuple[int, ...] = (512, 256, 128)  # two_tower: Input->512->256->128->l2-normalize
    item_tower: tuple[int, ...] = (512, 256, 128)
    inner_product_scale: float = 5.0
    retrieval_k: int = 100  # items the exported retrieval model returns per user
    # The behaviour sequence encoded by self-attention (Section 5.1), shared by
    # teacher and student: per-position item features and side features.
    behaviour_items: tuple[str, ...] = ()
    behaviour_side: tuple[str, ...] = ()
    attention_heads: int = 4
    attention_head_dim: int = 32
    # Candidate (side: item) features with which an MLP teacher that reads them and the behaviour
    # sequence attends over it (models/target_attention.py); empty: none.  Never the student:
    # a two-tower student cannot cross the candidate with the sequence.
    teacher_target_features: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    mode: Mode = Mode.PFD
    lambda_: float = 0.5
    swap_step: int = 0
    # The swapping step as a fraction of the run's steps (0: use swap_step), so that a
    # run made longer or shorter (train.epochs) moves its lambda switch with it.
    swap_fraction: float = 0.0
    temperature: float = 1.0
    teacher_checkpoint: str = ""  # Ind&Async: a pre-trained teacher, loaded and frozen
    # Ind&Async's first stage: train the teacher alone (the student is built, so the
    # checkpoint has the run's usual layout, but never computed, trained or exported).
    teacher_only: bool = False


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 1024
    # The run's length: `steps` (optimizer steps) or `epochs` (passes over the training
    # rows, counted once when the run starts: steps = round(epochs * rows / batch_size)).
    # Neither set: DEFAULT_STEPS.
    steps: int = 0
    epochs: float = 0.0
    learning_rate: float = 0.01
    warmup_steps: int = 0
    warmup_fraction: float = 0.0  # the warm-up as a fraction of the run's steps (0: use warmup_steps)
    initial_accumulator: float = 0.1
    steps_per_execution: int = 0  # steps per coordinator round trip; 0: 1 on one machine, CLUSTER_STEPS_PER_EXECUTION on a cluster
    log_every: int = 100  # steps per Keras "epoch": progress lines and checkpoints
    eval_batch_size: int = 4096
    eval_steps: int = 0  # 0: the whole held-out set
    seed: int = 0
    # A categorical feature whose ids the train step counts (the checkpoint's `model/visits`,
    # metrics.json's `visits`): which rows were trained on, and how often.  Empty: no counting.
    count_visits: str = ""


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """How variables spread over parameter servers (ParameterServerStrategy only).

    Embedding tables of at least `min_shard_bytes` per shard are split, into
    at most `max_shards` shards (0: one per parameter server); smaller ones,
    and every other variable, stay whole.  The tf.data service listens on
    each task's port + `data_service_port_offset` (the dispatcher on the
    chief's, a tf.data worker on each worker's).
    """

    min_shard_bytes: int = 256 << 10
    max_shards: int = 0
    data_service_port_offset: int = 1


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig
    features: tuple[FeatureSpec, ...]
    model: ModelConfig = ModelConfig()
    distill: DistillConfig = DistillConfig()
    train: TrainConfig = TrainConfig()
    cluster: ClusterConfig = ClusterConfig()
    base_dir: str = ""  # directory relative data paths are resolved against

    # --- derived views -------------------------------------------------
    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def regular_features(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if not f.privileged)

    @property
    def privileged_features(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.privileged)

    @property
    def student_features(self) -> tuple[FeatureSpec, ...]:
        if self.model.student_features:
            return tuple(self.feature(n) for n in self.model.student_features)
        return self.regular_features

    @property
    def teacher_features(self) -> tuple[FeatureSpec, ...]:
        """Inputs of the teacher, by mode (Section 4 and Table 4)."""
        mode = self.distill.mode
        if mode is Mode.BASELINE:
            return ()
        if mode is Mode.LUPI:
            return self.privileged_features
        if mode is Mode.MD:
            return self.student_features
        return self.student_features + self.privileged_features

    @property
    def teacher_tower(self) -> tuple[int, ...]:
        if self.distill.mode in (Mode.MD, Mode.PFD_MD):
            return self.model.big_teacher_tower
        return self.model.teacher_tower

    def resolve_path(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict; `from_dict(to_dict())` gives an equal config."""
        out = _plain(dataclasses.asdict(self))
        out.pop("base_dir")
        out["distill"]["lambda"] = out["distill"].pop("lambda_")
        for spec in out["features"]:
            defaults = _FEATURE_DEFAULTS
            for key in [k for k, v in spec.items() if k in defaults and v == defaults[k]]:
                del spec[key]
        return out


_FEATURE_DEFAULTS = {
    "column": "",
    "dtype": "string",
    "hash_buckets": 0,
    "vocabulary": [],
    "boundaries": [],
    "max_len": 0,
    "default": 0.0,
}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------
# Building and validating
# --------------------------------------------------------------------------
def _build(cls, raw: Any, key: str, renames: Mapping[str, str] = {}):
    """Builds dataclass `cls` from mapping `raw`, coercing by field type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in raw.items():
        attr = renames.get(name, name)
        if attr not in fields:
            spelled = {v: k for k, v in renames.items()}
            known = sorted(spelled.get(f, f) for f in fields)
            raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(known)})")
        kwargs[attr] = _coerce(fields[attr].type, value, f"{key}.{name}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"{key}.{missing[0]}: required key is missing")
    return cls(**kwargs)


_ENUMS = {
    "FeatureKind": FeatureKind,
    "Role": Role,
    "Side": Side,
    "Mode": Mode,
    "Sharing": Sharing,
    "Architecture": Architecture,
    "DataFormat": DataFormat,
}


def _coerce(type_name: str, value: Any, key: str) -> Any:
    type_name = str(type_name)
    if type_name in _ENUMS:
        enum_cls = _ENUMS[type_name]
        try:
            return enum_cls(value)
        except ValueError:
            choices = ", ".join(e.value for e in enum_cls)
            raise ConfigError(f"{key}: unknown value {value!r} (choose one of: {choices})") from None
    if type_name.startswith("tuple["):
        inner = type_name[len("tuple[") : -len(", ...]")]
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            if value is None:
                return ()
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value))
    if type_name == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    scalar = {"int": int, "float": float, "str": str}.get(type_name)
    if scalar is None:
        raise TypeError(f"unsupported config field type {type_name}")  # a bug, not bad input
    if scalar is int and not _is_integer(value):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if scalar is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if scalar is float and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if scalar is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return scalar(value)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value).is_integer()


def from_dict(raw: Mapping[str, Any], base_dir: str = "") -> Config:
    """Builds and validates a Config from a parsed YAML mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config: expected a mapping at the top level")
    known = {"data", "features", "model", "distill", "train", "cluster"}
    for name in raw:
        if name not in known:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(sorted(known))})")
    if "data" not in raw:
        raise ConfigError("data: required section is missing")
    raw_features = raw.get("features")
    if not isinstance(raw_features, Sequence) or not raw_features:
        raise ConfigError("features: expected a non-empty list of features")
    features = []
    for i, item in enumerate(raw_features):
        item = dict(item) if isinstance(item, Mapping) else item
        if isinstance(item, dict) and item.get("vocabulary") is not None:
            item["vocabulary"] = [str(v) for v in item["vocabulary"]]
        features.append(_build(FeatureSpec, item, f"features[{i}]"))
    config = Config(
        data=_build(DataConfig, raw["data"], "data"),
        features=tuple(features),
        model=_build(ModelConfig, raw.get("model"), "model"),
        distill=_build(DistillConfig, raw.get("distill"), "distill", {"lambda": "lambda_"}),
        train=_build(TrainConfig, raw.get("train"), "train"),
        cluster=_build(ClusterConfig, raw.get("cluster"), "cluster"),
        base_dir=base_dir,
    )
    if not config.train.steps and not config.train.epochs:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=DEFAULT_STEPS))
    validate(config)
    return config


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
            if not spec.boundaries:
                raise ConfigError(f"{key}.boundaries: a numeric feature needs boundaries")
            if any(b >= a for b, a in zip(spec.boundaries, spec.boundaries[1:])):
                raise ConfigError(f"{key}.boundaries: must be strictly increasing")
            for field in ("hash_buckets", "vocabulary", "max_len"):
                if getattr(spec, field):
                    raise ConfigError(f"{key}.{field}: not used by a numeric feature")
        else:
            if bool(spec.hash_buckets) == bool(spec.vocabulary):
                raise ConfigError(
                    f"{key}.hash_buckets: a {spec.kind.value} feature needs exactly one of "
                    "hash_buckets or vocabulary"
                )
            if spec.hash_buckets < 0:
                raise ConfigError(f"{key}.hash_buckets: must be positive")
            if len(set(spec.vocabulary)) != len(spec.vocabulary):
                raise ConfigError(f"{key}.vocabulary: has duplicate entries")
            if spec.boundaries:
                raise ConfigError(f"{key}.boundaries: only numeric features use boundaries")
            if spec.kind is FeatureKind.SEQUENCE and spec.max_len <= 0:
                raise ConfigError(f"{key}.max_len: a sequence feature needs max_len > 0")
            if spec.kind is FeatureKind.CATEGORICAL and spec.max_len:
                raise ConfigError(f"{key}.max_len: only sequence features use max_len")

    _validate_columns(config)
    data = config.data
    if not data.train_files:
        raise ConfigError("data.train_files: list at least one file or glob")
    if not data.eval_files:
        raise ConfigError("data.eval_files: list at least one file or glob")
    if data.label in names:
        raise ConfigError(f"data.label: {data.label!r} is also declared as a feature")

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
        if model.sharing is not Sharing.INDEPENDENT:
            raise ConfigError(
                "distill.teacher_only: a teacher pre-trained for Ind&Async has its own embeddings; "
                "set model.sharing: independent"
            )

    cluster = config.cluster
    if cluster.min_shard_bytes <= 0:
        raise ConfigError("cluster.min_shard_bytes: must be positive")
    if cluster.max_shards < 0:
        raise ConfigError("cluster.max_shards: must be >= 0 (0: one shard per parameter server)")
    if cluster.data_service_port_offset <= 0:
        raise ConfigError("cluster.data_service_port_offset: must be positive")

    train = config.train
    for field in ("batch_size", "log_every", "eval_batch_size"):
        if getattr(train, field) <= 0:
            raise ConfigError(f"train.{field}: must be positive")
    _validate_length(config)
    if train.learning_rate <= 0:
        raise ConfigError("train.learning_rate: must be positive")
    if train.count_visits:
        if train.count_visits not in names:
            raise ConfigError(f"train.count_visits: unknown feature {train.count_visits!r}")
        if config.feature(train.count_visits).kind is not FeatureKind.CATEGORICAL:
            raise ConfigError(f"train.count_visits: {train.count_visits!r} must be a categorical feature")
    for field in ("warmup_steps", "eval_steps", "steps_per_execution"):
        if getattr(train, field) < 0:
            raise ConfigError(f"train.{field}: must be >= 0")


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
    for i, spec in enumerate(config.features):
        key = f"features[{i}].column"
        if spec.source == config.data.label:
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


def resolve_length(config: Config, train_rows: int) -> Config:
    """The config with the run's length in steps: train.epochs, train.warmup_fraction and
    distill.swap_fraction turned into train.steps, train.warmup_steps and distill.swap_step.

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
        distill=dataclasses.replace(distill, swap_step=swap, swap_fraction=0.0),
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


# --------------------------------------------------------------------------
# Files and overrides
# --------------------------------------------------------------------------
def load(path: str, overrides: Sequence[str] = ()) -> Config:
    """Reads a YAML config, applies `a.b=c` overrides, validates, resolves paths."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    raw = apply_overrides(raw or {}, overrides)
    try:
        return from_dict(raw, base_dir=os.path.dirname(os.path.abspath(path)))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Returns a copy of `raw` with each `a.b=value` applied (value parsed as YAML).

    List items are addressed by index or, for `features`, by name:
    `features.user_id.dim=32`.  An override of `train.steps`,
    `train.warmup_steps` or `distill.swap_step` replaces the file's
    `train.epochs`, `train.warmup_fraction` or `distill.swap_fraction`
    (`PARTNERS`), and the other way round.
    """
    out = yaml.safe_load(yaml.safe_dump(dict(raw)))
    _drop_replaced_partners(out, overrides)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        dotted, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as err:
            reason = " ".join(str(err).split())
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({reason})") from None
        parts = dotted.strip().split(".")
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = _list_index(node, part, where)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"--set {dotted}: {where} is not a section")
    return out


# Keys that say one thing two ways (steps or epochs, a step or a fraction of the run): an
# override of one replaces the file's other, so `--set train.steps=200` shortens an epochs config.
PARTNERS = {"train.steps": "train.epochs", "train.warmup_steps": "train.warmup_fraction",
            "distill.swap_step": "distill.swap_fraction"}
PARTNERS.update({v: k for k, v in PARTNERS.items()})


def _drop_replaced_partners(raw: dict, overrides: Sequence[str]) -> None:
    keys = {item.split("=", 1)[0].strip() for item in overrides}
    for key in keys:
        partner = PARTNERS.get(key)
        if partner and partner not in keys:
            section, name = partner.split(".")
            if isinstance(raw.get(section), dict):
                raw[section].pop(name, None)


def _list_index(node: list, part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for i, entry in enumerate(node):
        if isinstance(entry, Mapping) and entry.get("name") == part:
            return i
    raise ConfigError(f"--set {where}: no list entry named or numbered {part!r}")


def saved_dict(config: Config) -> dict[str, Any]:
    """`config.to_dict()` with its paths made absolute: what `save` writes."""
    raw = config.to_dict()
    for field in ("train_files", "eval_files", "item_files"):
        raw["data"][field] = [config.resolve_path(p) for p in raw["data"][field]]
    if raw["distill"]["teacher_checkpoint"]:
        raw["distill"]["teacher_checkpoint"] = config.resolve_path(raw["distill"]["teacher_checkpoint"])
    return raw


def save(config: Config, path: str) -> None:
    """Writes the config with its paths made absolute as YAML (atomically)."""
    raw = saved_dict(config)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    os.replace(tmp, path)
