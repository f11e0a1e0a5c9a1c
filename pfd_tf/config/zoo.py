"""The schema of the config's networks: the model zoo, the `teachers:` list and `student:`.

Part of `pfd_tf.config` (re-exported by `pfd_tf.config.schema`); checked by
`pfd_tf.config.networks`.
"""
from __future__ import annotations

import dataclasses
import enum


class ZooModel(str, enum.Enum):
    """A network of the model zoo (`pfd_tf.models.zoo`), as teacher or student (Zhu et al. 2020, Section 2)."""

    LR = "lr"  # logistic regression: the first-order weights only
    FM = "fm"  # LR + pairwise inner products of the fields (Rendle 2010)
    DNN = "dnn"  # an MLP over the concatenated fields (today's PFD student and teacher)
    WIDE_DEEP = "wide_deep"  # LR + DNN (Cheng et al. 2016)
    DEEPFM = "deepfm"  # FM + DNN (Guo et al. 2017)
    DCN = "dcn"  # cross network (tensorflow-recommenders' Cross, full-rank) beside a DNN (Wang et al. 2017)
    DCN_V2 = "dcn_v2"  # the same cross layer with a low-rank projection (Wang et al. 2021)
    XDEEPFM = "xdeepfm"  # LR + CIN + DNN (Lian et al. 2018)
    AUTOINT = "autoint"  # AutoInt+: multi-head self-attention over fields, plus a DNN (Song et al. 2019)
    FIBINET = "fibinet"  # SENET + bilinear interactions, then a DNN (Huang et al. 2019)
    DAGFM = "dagfm"  # message passing over a DAG of fields, a linear layer over the pooled states (KD-DAGFM)
    TWO_TOWER = "two_tower"  # user tower . item tower (PFD's coarse ranker, Eq. (3)); set by model.architecture
    # Multi-task backbones (pfd_tf.multitask), a tower and logit per task of `tasks:` (pfd_tf.models.zoo.backbone)
    SHARED_BOTTOM = "shared_bottom"  # one bottom MLP under every task's tower (Caruana 1997)
    MMOE = "mmoe"  # experts mixed by one softmax gate per task (Ma et al. 2018)
    PLE = "ple"  # task and shared experts, gated, over `levels` levels (Tang et al. 2020; one level: CGC)
    CROSS_STITCH = "cross_stitch"  # one MLP column per task, mixed after each layer (Misra et al. 2016)

class FeatureView(str, enum.Enum):
    """Which features a teacher reads (PFD paper, Table 4)."""

    REGULAR = "regular"  # what the student reads (MD, and the ensemble paper's teachers)
    ALL = "all"  # regular + privileged (PFD)
    PRIVILEGED = "privileged"  # privileged only (LUPI)

class Ensemble(str, enum.Enum):
    """How several teachers' logits become the one soft label (Zhu et al. 2020, Eq. (10))."""

    AVERAGE = "average"  # alpha_i = 1 / M
    GATING = "gating"  # alpha_i = softmax_i(w_i z_Ti + b_i), per example (Eq. (11))

class GateData(str, enum.Enum):
    """Which rows train the teacher gating network of Eq. (11) (`pfd_tf.distill.gate_data`)."""

    TRAIN = "train"  # the training batches, as every other loss
    VALIDATION = "validation"  # batches of data.validation_files only, rows no network trains on (Section 3.4.2)

@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """One network of the zoo and its sizes; a field a model does not use is ignored.

    The DNN part of every model (its only part for `dnn`) has hidden layers
    `tower`, each Dense -> `model.normalization` -> LeakyReLU.
    """

    model: ZooModel = ZooModel.DNN
    tower: tuple[int, ...] = ()  # empty: model.student_tower for the student, model.teacher_tower for a teacher
    cross_layers: int = 3  # dcn, dcn_v2
    cross_rank: int = 32  # dcn_v2: the low-rank projection's size
    cin_layers: tuple[int, ...] = (128, 128)  # xdeepfm: feature maps per CIN layer
    # xdeepfm: the CIN maps' activation, relu (DeepCTR's) or linear (none, Eq. (6) of Lian et al.); ReLU maps
    # can all die at a high Adagrad rate (measured: docs/results.md, issue 12), leaving xDeepFM = LR.
    cin_activation: str = "relu"
    attention_layers: int = 3  # autoint
    attention_heads: int = 2
    attention_dim: int = 16  # per head
    attention_residual: bool = True
    senet_reduction: int = 3  # fibinet: SENET's squeeze ratio
    bilinear: str = "field_interaction"  # fibinet: field_all | field_each | field_interaction
    dagfm_type: str = "inner"  # dagfm: inner | outer, the edges' interaction function
    dagfm_layers: int = 3  # dagfm: propagation layers K (interactions up to order K + 1)
    # The multi-task backbones; `tower` is each task's tower.  expert_units: an expert's hidden widths (the
    # bottom of shared_bottom, each column of cross_stitch); experts: mmoe's experts, ple's per task.
    expert_units: tuple[int, ...] = (64,)
    experts: int = 4
    shared_experts: int = 1  # ple: the shared experts per level
    levels: int = 1  # ple: extraction levels (1: CGC)

@dataclasses.dataclass(frozen=True)
class TeacherConfig(NetworkConfig):
    """One teacher: a network of the zoo over a feature view, co-trained or pre-trained.

    `checkpoint` set (a run's model_dir or one of its checkpoints): the
    pre-train scheme; the teacher is restored from that run and frozen (its
    own tables, inference mode).  Empty: co-trained with the student,
    sharing its tables as `model.sharing` says.
    """

    name: str = ""
    features: FeatureView = FeatureView.ALL
    checkpoint: str = ""


@dataclasses.dataclass(frozen=True)
class StudentConfig(NetworkConfig):
    """One student: a network of the zoo over the student features, on the shared tables.

    The first of `students:` is the served one, named `student` (its `name`
    empty or `student`); every other is named (`student_<name>` in
    checkpoints, `export/<name>/` when exported) and trains on its own label
    loss plus the distillation terms that name it: one teacher training the
    stages of a cascade together ("ranking distillation across the cascade",
    its one teacher with three students).  `model: two_tower` makes a
    retrieval student of any but the first (the first is two-tower by
    `model.architecture`, as before).
    """

    name: str = ""
