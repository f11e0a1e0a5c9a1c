"""The config's schema: its enums and frozen dataclasses, and how a config is written back as YAML.

Import it as `pfd_tf.config`, which adds reading and checking
(`pfd_tf.config_parse`, `pfd_tf.config_checks`).

The six sections are described in `pfd_tf.config`.
"""
from __future__ import annotations

import dataclasses
import enum
import os
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config value is missing, unknown or inconsistent; the message names the key."""


class FeatureKind(str, enum.Enum):
    CATEGORICAL = "categorical"  # one id per row, by vocabulary or hash buckets
    NUMERIC = "numeric"  # discretized by boundaries, as in the paper (Section 3, footnote 1), or fed as its value
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


class Normalization(str, enum.Enum):
    """What follows each hidden Dense layer of a tower, before its LeakyReLU."""

    BATCH = "batch"  # batch normalization, the paper's Dense -> BN -> LeakyReLU (Section 5.1)
    LAYER = "layer"  # layer normalization: per row, no running statistics
    NONE = "none"  # Dense (with bias) -> LeakyReLU


class Optimizer(str, enum.Enum):
    ADAGRAD = "adagrad"  # the paper's (Section 5.1)
    ADAM = "adam"


class DataFormat(str, enum.Enum):
    CSV = "csv"
    TFRECORD = "tfrecord"


class NumericTransform(str, enum.Enum):
    """What a numeric feature's raw value x goes through first (before its boundaries, or its normalization)."""

    NONE = "none"
    LOG1P = "log1p"  # ln(1 + max(x, 0)): counts; a negative x counts as 0
    LOG_SQUARE = "log_square"  # x > 2: floor(ln(x)^2), else x (Criteo's winning transform, DeepCTR/FuxiCTR)


class NumericEncoding(str, enum.Enum):
    """How a numeric feature reaches the model (`pfd_tf.features`)."""

    BUCKET = "bucket"  # an embedding id, by `boundaries` (Section 3, footnote 1 of the PFD paper)
    VALUE = "value"  # one embedding row times (transform(x) - mean) / std


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
    transform: NumericTransform = NumericTransform.NONE  # numeric
    encoding: NumericEncoding = NumericEncoding.BUCKET  # numeric
    # encoding: value: x' = (transform(x) - mean) / std; std 0: both computed from the training files
    # when the run starts (model_dir/feature_stats.json, `with_feature_stats`).
    mean: float = 0.0
    std: float = 0.0

    @property
    def source(self) -> str:
        return self.column or self.name

    @property
    def as_value(self) -> bool:
        """A numeric feature fed as its normalized value (not bucketized into an id)."""
        return self.kind is FeatureKind.NUMERIC and self.encoding is NumericEncoding.VALUE

    @property
    def needs_stats(self) -> bool:
        """Fed as its value with its mean and std left for the training files to give."""
        return self.as_value and not self.std

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
    # pfd-compare: the files its learning-rate choice evaluates on, held out of the training files
    # for that choice only (default: the last training file, i.e. the last day).  pfd-train ignores them.
    validation_files: tuple[str, ...] = ()


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
    # Each hidden layer of every tower: Dense -> normalization -> LeakyReLU (towers.py).
    normalization: Normalization = Normalization.NONE  # measured best on the CVR validation world (README, Results)
    batch_norm_momentum: float = 0.99  # normalization: batch; the running statistics' decay
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
    optimizer: Optimizer = Optimizer.ADAGRAD
    learning_rate: float = 0.01
    warmup_steps: int = 0
    warmup_fraction: float = 0.0  # the warm-up as a fraction of the run's steps (0: use warmup_steps)
    initial_accumulator: float = 0.1  # adagrad
    adam_beta_1: float = 0.9
    adam_beta_2: float = 0.999
    adam_epsilon: float = 1e-7
    # L2 on the embedding rows each batch reads: embedding_l2 * sum of their squares / batch_size,
    # added to the loss (every table, teacher's and student's).  0: none.
    embedding_l2: float = 0.0
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
    "transform": "none",
    "encoding": "bucket",
    "mean": 0.0,
    "std": 0.0,
}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

def saved_dict(config: Config) -> dict[str, Any]:
    """`config.to_dict()` with its paths made absolute: what `save` writes."""
    raw = config.to_dict()
    for field in ("train_files", "eval_files", "item_files", "validation_files"):
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


