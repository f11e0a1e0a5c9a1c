"""The config's `distill:` section: which teachers train beside the student (the PFD paper's modes,
Table 4), Eq. (5)'s lambda and swapping step (Algorithm 1), the temperature, ensembles and hints; or the list
of terms those keys stand for (`distill.terms`, `pfd_tf.config.terms`)."""
from __future__ import annotations

import dataclasses
import enum

from pfd_tf.config.crossdistil import CrossDistilConfig
from pfd_tf.config.terms import TermConfig
from pfd_tf.config.zoo import Ensemble, GateData


class Mode(str, enum.Enum):
    """Which teacher trains beside the student (Table 4 of the PFD paper)."""

    BASELINE = "baseline"  # the student alone, no teacher
    LUPI = "lupi"  # teacher sees privileged features only, Eq. (2)
    MD = "md"  # teacher sees regular features with a bigger tower, Eq. (1)
    PFD = "pfd"  # teacher sees regular + privileged features, student's tower, Eq. (5)
    PFD_MD = "pfd_md"  # regular + privileged features and a bigger tower
    TEACHERS = "teachers"  # the config's `teachers:` list


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
    # The distillation terms of the student's loss as a list (`pfd_tf.config.terms`); empty: the shorthand above
    # (lambda, temperature, swap_*, hint_*) stands for them (`pfd_tf.config.terms_checks.expand_terms`).
    terms: tuple[TermConfig, ...] = ()
    # CrossDistil on the served student's two tasks (`pfd_tf.config.crossdistil`); None: off.
    crossdistil: CrossDistilConfig | None = None
