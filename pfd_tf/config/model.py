"""The config's `model:` section: the towers and their normalization, how every embedding table starts,
how teacher and student share input embeddings (Tables 7 and 8 of the PFD paper), the two-tower ranker (Eq. 3),
the behaviour sequence (Section 5.1) and a warm start from another run (`init_from`)."""
from __future__ import annotations

import dataclasses
import enum


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
