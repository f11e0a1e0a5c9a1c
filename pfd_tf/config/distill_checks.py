"""The checks of the `distill:` section's mode keys: Eq. (5)'s lambda in [0, 1], the swapping step and the
temperature; a mode's need for privileged features (Table 4 of the PFD paper); a pre-trained, frozen teacher
(Ind&Async) and a run that trains the teacher alone, each with its own embeddings (Tables 7 and 8).  The
teachers' networks and the term list are checked by `networks` and `terms_checks`."""
from __future__ import annotations

from pfd_tf.config.distill import Mode
from pfd_tf.config.errors import ConfigError
from pfd_tf.config.model import Sharing
from pfd_tf.config.schema import Config


def validate_distill(config: Config) -> None:
    """`distill.lambda`, `swap_step`, `temperature`, `mode`, `teacher_checkpoint` and `teacher_only`."""
    model = config.model
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
