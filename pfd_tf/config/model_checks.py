"""The checks of the `model:` section: what the student may read (never a privileged feature: it is absent
at serving time), tower sizes, normalization, the two-tower ranker (Eq. 3 of the PFD paper) and the behaviour
sequence the teachers and the student share (Section 5.1)."""
from __future__ import annotations

from pfd_tf.config.data import DataFormat
from pfd_tf.config.errors import ConfigError
from pfd_tf.config.features import FeatureKind, Side
from pfd_tf.config.model import Architecture, Normalization, Sharing
from pfd_tf.config.schema import Config


def validate_model(config: Config) -> None:
    """The `model:` keys, each against the features and the architecture."""
    names = {spec.name for spec in config.features}
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
    validate_behaviour(config)
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


def validate_behaviour(config: Config) -> None:
    """The behaviour sequence's features (user-side sequences of one length) and the teachers' attention target."""
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
