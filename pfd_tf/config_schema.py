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

from pfd_tf.names import DEFAULT_TASK

from pfd_tf.config_features import (  # noqa: F401  (re-exported)
    FEATURE_DEFAULTS, Derive, FeatureKind, FeatureSpec, NumericEncoding, NumericTransform, Role, Side)
from pfd_tf.config_tasks import TaskConfig, TaskKind  # noqa: F401  (re-exported)
from pfd_tf.config_terms import TermConfig, TermSchedule, term_dict  # noqa: F401  (re-exported)
from pfd_tf.config_crossdistil import CrossDistilConfig
from pfd_tf.config_zoo import (  # noqa: F401  (re-exported)
    Ensemble, FeatureView, GateData, NetworkConfig, StudentConfig, TeacherConfig, ZooModel)
from pfd_tf.names import SERVED


class ConfigError(ValueError):
    """A config value is missing, unknown or inconsistent; the message names the key."""


class Mode(str, enum.Enum):
    """Which teacher trains beside the student (Table 4 of the PFD paper)."""

    BASELINE = "baseline"  # the student alone, no teacher
    LUPI = "lupi"  # teacher sees privileged features only, Eq. (2)
    MD = "md"  # teacher sees regular features with a bigger tower, Eq. (1)
    PFD = "pfd"  # teacher sees regular + privileged features, student's tower, Eq. (5)
    PFD_MD = "pfd_md"  # regular + privileged features and a bigger tower
    TEACHERS = "teachers"  # the config's `teachers:` list


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


class EmbeddingInit(str, enum.Enum):
    """How every embedding table starts (`model.embedding_init`, its scale `model.embedding_init_scale`)."""

    UNIFORM = "uniform"  # U(-scale, scale): Keras' Embedding default at scale 0.05
    NORMAL = "normal"  # N(0, scale^2): DeepCTR's default at scale 0.0001


class Optimizer(str, enum.Enum):
    ADAGRAD = "adagrad"  # the paper's (Section 5.1)
    ADAM = "adam"


class EarlyStopping(str, enum.Enum):
    """What decides when a run stops early and which checkpoint is its result (Section 3.4.2)."""

    NONE = "none"
    DISTILLATION = "distillation"  # the student's distillation loss on the validation files (lower is better)
    AUC = "auc"  # validation AUC: the student's, or the teachers' mean when only teachers train


class DataFormat(str, enum.Enum):
    CSV = "csv"
    TFRECORD = "tfrecord"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The data files and how to read them.

    CSV (`format: csv`): fields split on `csv_delimiter` (one character: "," by default, "\t" for
    Criteo's tab-separated files); sequence fields split again on `sequence_delimiter`.  Each
    file's first line is its header unless `columns` names the columns of header-less files
    (then line 1 is the first row, as error messages count it).  A name ending in `.gz` is
    gunzipped.  TFRecord (`format: tfrecord`): serialized tf.train.Example records.
    """

    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    label: str = ""  # the label column: shorthand for the one binary task (`tasks:`, pfd_tf.config_tasks)
    format: DataFormat = DataFormat.CSV
    sequence_delimiter: str = "|"
    csv_delimiter: str = ","  # one character; a tab is "\t" in double quotes in YAML (Criteo)
    # CSV files without a header line: their columns' names, in order; every line is data (Criteo's
    # files).  Empty: each file's first line is its header, naming its columns.
    columns: tuple[str, ...] = ()
    # Where the vocabularies of features with `min_count` are, one `<feature name>.txt` each, as
    # pfd-vocab writes them.  Empty: the run counts them from the training files as it starts.
    vocabulary_dir: str = ""
    shuffle_buffer: int = 10_000
    # Keep the parsed, encoded training rows in memory after the first epoch (data that
    # fits in RAM and is read for several epochs); rows are reshuffled every epoch.
    cache: bool = False
    # two_tower: the items the retrieval index holds (CSV globs; default: the train files)
    item_files: tuple[str, ...] = ()
    item_id_column: str = "item_id"
    # Validation files.  pfd-compare: what its learning-rate choice evaluates on, held out of the training
    # files for that choice only (default: the last training file, i.e. the last day).  pfd-train: what
    # train.early_stopping scores on (trained on too with train.merge_validation); otherwise unused.
    validation_files: tuple[str, ...] = ()

    @property
    def header(self) -> bool:
        """Each CSV file's first line names its columns (no `columns` given)."""
        return not self.columns


@dataclasses.dataclass(frozen=True)
class InitFrom:
    """`model.init_from`: networks that start from another run's checkpoint instead of their fresh init
    (KD-DAGFM's fine-tune phase: the distilled student trained on; `pfd_tf.distill.warm_start`)."""

    checkpoint: str = ""  # a run's model_dir (its latest checkpoint) or a checkpoint prefix; empty: none
    networks: tuple[str, ...] = ("student",)  # by name: `student`, or a teacher's name
    tables: bool = True  # the embedding tables those networks read come from the checkpoint too


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
    # The normalization of the teachers' MLP towers (a DNN teacher's, a zoo teacher's DNN part); empty: the
    # `normalization` above.  A two-tower teacher keeps `normalization`: its l2-normalized vectors bound its
    # logit, where an MLP's logit is unbounded and can diverge at the rate a two-tower student needs
    # (docs/results.md, "Why PFD+MD hurt the two-tower student").
    teacher_normalization: str = ""

    # How every embedding table starts: uniform in [-scale, scale] or normal with stddev scale.  DeepCTR's
    # is `normal` at 0.0001: in short runs (few steps per id) rows that start near zero stay quiet
    # where U(-0.05, 0.05) leaves noise as large as what a row learns (docs/results.md, zoo parity).
    embedding_init: EmbeddingInit = EmbeddingInit.UNIFORM
    embedding_init_scale: float = 0.05
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
    init_from: InitFrom = InitFrom()  # warm start from another run, before step 0 only


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
    # Several teachers: how their logits combine into the soft label (Eq. (10)-(11) of Zhu et al.).
    ensemble: Ensemble = Ensemble.AVERAGE
    # Which rows train the gating network (ensemble: gating): `train`, the training batches; `validation`, batches
    # of data.validation_files, which nothing else trains on (pfd_tf.distill.gate_data).
    gate_data: GateData = GateData.TRAIN
    # Hint regression (Eq. (9)): hint_weight * ||W v_T - v_S||^2 between a teacher's and the student's named
    # hidden outputs ("final": the input of each one's logit layer).  0: no hint.
    hint_weight: float = 0.0
    hint_teacher: str = ""  # the teacher whose hidden output is the hint (empty: the first)
    hint_teacher_layer: str = "final"
    hint_student_layer: str = "final"
    # The distillation terms of the student's loss as a list (`pfd_tf.config_terms`); empty: the shorthand above
    # (lambda, temperature, swap_*, hint_*) stands for them (`pfd_tf.config_terms_checks.expand_terms`).
    terms: tuple[TermConfig, ...] = ()
    # CrossDistil on the served student's two tasks (`pfd_tf.config_crossdistil`); None: off.
    crossdistil: CrossDistilConfig | None = None


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
    # Early stopping (Section 3.4.2 of Zhu et al. 2020): at each checkpoint (every log_every steps), the
    # run is scored on data.validation_files: `distillation`, the student's distillation loss (lower is
    # better); `auc`, the student's AUC (the co-trained teachers' mean when only teachers train).  After
    # `early_stopping_patience` scores without improvement the run stops; the best checkpoint is the
    # run's result (evaluated, exported).  `merge_validation`: the validation files are trained on too
    # (with `distillation`: the teacher, not the labels, says when to stop).
    early_stopping: EarlyStopping = EarlyStopping.NONE
    early_stopping_patience: int = 3
    merge_validation: bool = False
    # The divergence guard (pfd_tf.divergence), in nats, exit status 4: a trained network's mean training log
    # loss over a Keras epoch more than `divergence_training_margin` above ln 2, or a student's held-out log
    # loss more than `divergence_margin` above the held-out rows' label entropy (the constant predictor's).
    divergence_margin: float = 5.0
    divergence_training_margin: float = 20.0
    # At the end of a run that exported: what `pfd-report` measures (parameters, FLOPs and latency of every
    # export and every teacher), printed and written to model_dir/cost_report.json (pfd_tf.cost_report).
    cost_report: bool = False


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


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig
    features: tuple[FeatureSpec, ...]
    model: ModelConfig = ModelConfig()
    distill: DistillConfig = DistillConfig()
    train: TrainConfig = TrainConfig()
    cluster: ClusterConfig = ClusterConfig()
    # The teachers, each a network of the zoo; empty: the one teacher `distill.mode` describes
    # (`teacher_specs`).  Given: distill.mode is `teachers`.
    teachers: tuple[TeacherConfig, ...] = ()
    # The students, each a network of the zoo; the first is the served one, named `student`, the others by
    # their `name`.  `student:` in YAML and --set is shorthand for the first.
    students: tuple[StudentConfig, ...] = (StudentConfig(),)
    # The labels learnt, each a task (`pfd_tf.config_tasks`); empty: the one binary task of `data.label`.
    tasks: tuple[TaskConfig, ...] = ()
    base_dir: str = ""  # directory relative data paths are resolved against

    # --- derived views -------------------------------------------------
    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def student(self) -> NetworkConfig:
        """The served student's network (`students[0]`)."""
        return self.students[0]

    @property
    def student_names(self) -> tuple[str, ...]:
        """The students' names, the served one (`student`) first: the keys of their metrics and exports."""
        return (SERVED,) + tuple(s.name for s in self.students[1:])

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
        """Inputs of the teachers, by mode (Section 4 and Table 4): every feature some teacher reads, in order."""
        read = {f.name for t in self.teacher_specs for f in self.view_features(t.features)}
        return tuple(f for f in self.student_features + self.privileged_features if f.name in read)

    def network_normalization(self, network: NetworkConfig) -> Normalization:
        """The normalization of `network`'s MLP towers, if it is a teacher (`model.teacher_normalization`)."""
        teacher = isinstance(network, TeacherConfig) and network.model is not ZooModel.TWO_TOWER
        if teacher and self.model.teacher_normalization:
            return Normalization(self.model.teacher_normalization)
        return self.model.normalization

    @property
    def teacher_tower(self) -> tuple[int, ...]:
        if self.distill.mode in (Mode.MD, Mode.PFD_MD):
            return self.model.big_teacher_tower
        return self.model.teacher_tower

    def view_features(self, view: "FeatureView") -> tuple[FeatureSpec, ...]:
        """The features a teacher with feature view `view` reads."""
        if view is FeatureView.PRIVILEGED:
            return self.privileged_features
        if view is FeatureView.REGULAR:
            return self.student_features
        return self.student_features + self.privileged_features

    @property
    def teacher_specs(self) -> tuple[TeacherConfig, ...]:
        """The teachers, `teachers:` as given or the one `distill.mode` stands for (its preset).

        The five PFD modes are shorthand: `baseline` has none; `lupi`, `md`,
        `pfd` and `pfd_md` one teacher named `teacher`, a DNN (two towers for
        a two-tower `pfd`) over the privileged, regular or all features, with
        `model.teacher_tower` or, for md and pfd_md, `model.big_teacher_tower`;
        `distill.teacher_checkpoint` its checkpoint.
        """
        mode = self.distill.mode
        if mode is Mode.TEACHERS:
            return self.teachers
        if mode is Mode.BASELINE:
            return ()
        view = {Mode.LUPI: FeatureView.PRIVILEGED, Mode.MD: FeatureView.REGULAR}.get(mode, FeatureView.ALL)
        two_tower = self.model.architecture is Architecture.TWO_TOWER and mode is Mode.PFD
        return (TeacherConfig(name="teacher", model=ZooModel.TWO_TOWER if two_tower else ZooModel.DNN,
                              tower=self.teacher_tower, features=view, checkpoint=self.distill.teacher_checkpoint),)

    @property
    def task_specs(self) -> tuple[TaskConfig, ...]:
        """The tasks, `tasks:` as given or the one binary task `data.label` stands for, named
        `pfd_tf.names.DEFAULT_TASK` (empty when neither is given: `validate` refuses that)."""
        if self.tasks:
            return self.tasks
        return (TaskConfig(name=DEFAULT_TASK, label=self.data.label),) if self.data.label else ()

    def resolve_path(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict; `from_dict(to_dict())` gives an equal config."""
        out = _plain(dataclasses.asdict(self))
        out.pop("base_dir")
        out["distill"]["lambda"] = out["distill"].pop("lambda_")
        _terms_or_shorthand(out["distill"], self.distill.terms)
        if out["distill"]["crossdistil"] is None:  # off: config.yaml as before the section existed
            del out["distill"]["crossdistil"]
        if not out["tasks"]:  # the shorthand data.label, written as it was given
            del out["tasks"]
        if not out["data"]["label"]:
            del out["data"]["label"]
        if not out["students"][0]["name"]:  # the served student's name is implied: config.yaml as before names
            del out["students"][0]["name"]
        for spec in out["features"]:
            defaults = FEATURE_DEFAULTS
            for key in [k for k, v in spec.items() if k in defaults and v == defaults[k]]:
                del spec[key]
        return out


def _terms_or_shorthand(distill: dict[str, Any], terms: tuple[TermConfig, ...]) -> None:
    """`distill` as written: without `terms` when the shorthand keys stand for them (so a config.yaml, and
    its fingerprint, are what they were before the list existed); with them, without the shorthand keys
    (at their defaults, which a config with `terms` may not set)."""
    if not terms:
        del distill["terms"]
        return
    for key in ("lambda", "temperature", "swap_step", "swap_fraction", "hint_weight", "hint_teacher",
                "hint_teacher_layer", "hint_student_layer"):
        del distill[key]
    distill["terms"] = [_plain(term_dict(term)) for term in terms]


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


