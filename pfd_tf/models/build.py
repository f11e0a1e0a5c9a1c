"""Builds the teacher, the student and their embedding tables from a config.

This is where the sharing of input components (Section 4 and Tables 7-8 of
the PFD paper) is decided:

- `shared` (Share&Sync): one table per feature; a feature both networks read
  uses the same table object.
- `shared` with `student_private_features` (Share*&Sync): the student gets its
  own table for those features (the paper gives the student its own user id).
- `independent` (Ind&Sync, and Ind&Async with a pre-trained teacher): the
  teacher's tables are all its own, named `teacher_embedding_*`.

Every function here only constructs objects; call them under
`strategy.scope()` to place variables on parameter servers.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import tf
from pfd_tf.config import Config, FeatureKind, Mode, Sharing
from pfd_tf.models.distiller import Distiller
from pfd_tf.models.embedding import FeatureEmbedding, build_tables
from pfd_tf.models.ranker import Ranker
from pfd_tf.models.towers import MLPTower


def _tower(config: Config, units, name: str) -> MLPTower:
    return MLPTower(units, config.model.leaky_relu_alpha, config.model.dropout, name=name)


def _student_tables(config: Config) -> tuple[dict, dict]:
    """(tables a teacher may share, the student's tables incl. its private ones)."""
    private = set(config.model.student_private_features)
    shareable = build_tables([f for f in config.student_features if f.name not in private])
    own = build_tables([config.feature(n) for n in sorted(private)], prefix="student_embedding")
    return shareable, {**shareable, **own}


def build_student(config: Config, tables: Mapping | None = None) -> Ranker:
    """The student alone: what training shares and what export rebuilds unsharded."""
    tables = tables if tables is not None else _student_tables(config)[1]
    embedding = FeatureEmbedding(config.student_features, tables, name="student_inputs")
    return Ranker(embedding, _tower(config, config.model.student_tower, "student_tower"), name="student")


def build_teacher(config: Config, tables: Mapping) -> Ranker:
    embedding = FeatureEmbedding(config.teacher_features, tables, name="teacher_inputs")
    return Ranker(embedding, _tower(config, config.teacher_tower, "teacher_tower"), name="teacher")


def build_distiller(config: Config) -> Distiller:
    """Teacher + student wired as `config.model.sharing` says, weights created."""
    shareable, student_tables = _student_tables(config)
    teacher = None
    if config.distill.mode is not Mode.BASELINE:
        if config.model.sharing is Sharing.INDEPENDENT:
            teacher_tables = build_tables(config.teacher_features, prefix="teacher_embedding")
        else:
            teacher_only = [f for f in config.teacher_features if f.name not in shareable]
            teacher_tables = {**shareable, **build_tables(teacher_only)}
        teacher = build_teacher(config, teacher_tables)
    distiller = Distiller(
        build_student(config, student_tables),
        teacher,
        lambda_=config.distill.lambda_,
        swap_step=config.distill.swap_step,
        temperature=config.distill.temperature,
        name="distiller",
    )
    build_weights(distiller.student)
    if teacher is not None:
        build_weights(teacher)
    return distiller


def dummy_ids(features, batch: int = 2) -> dict[str, tf.Tensor]:
    """A batch of padding/zero ids for `features`, to create weights eagerly."""
    ids = {}
    for spec in features:
        shape = [batch, spec.max_len] if spec.kind is FeatureKind.SEQUENCE else [batch]
        ids[spec.name] = tf.zeros(shape, tf.int64)
    return ids


def build_weights(ranker: Ranker) -> None:
    """Creates the ranker's variables now (inside the caller's strategy scope).

    Only the ranker's own features are fed, so an exported student never
    records a trace that mentions another feature.
    """
    ranker(dummy_ids(ranker.embedding.features), training=False)
