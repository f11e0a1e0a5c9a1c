"""The schema and checks of `distill.crossdistil:`, CrossDistil on the served student's two tasks.

"Cross-Task Knowledge Distillation in Multi-Task Recommendation" (Yang et
al., AAAI 2022): the student itself carries the teachers, augmented ranking
tasks A+ and B+ trained by the quadruplet loss (Eq. (4)); their logits,
calibrated by Platt scaling trained bi-level (Eq. (8)-(9), Algorithm 1) and
error-corrected with margin m (Eq. (10)), are the soft labels of the tasks A
and B (Eq. (6)-(7)).  So the section stands with `distill.mode: baseline`
(no teacher network): the teachers are training-only heads of the student
(`pfd_tf.distill.crossdistil_part`), absent from the export.

    distill:
      mode: baseline
      crossdistil: {tasks: [like, buy], alpha: 0.5, beta1: 1.0, beta2: 1.0, margin: 0.0,
                    temperature: 1.0, calibration_learning_rate: 0.01}

The flags give the ablations of Table 4: `calibrate: false` (w/o
calibration), `correct: false` (w/o correction), `beta1 = beta2 = 0` (w/o
auxiliary ranking), `alpha: 0` (TAUG: the augmented tasks without
distillation).  One value of beta1, beta2, alpha and m serves both tasks.
Schema only; the checks are `pfd_tf.config.crossdistil_checks`.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CrossDistilConfig:
    # (A, B): A's label first in the quadruplets (Eq. (2)); empty: the first two tasks of `tasks:`.
    tasks: tuple[str, ...] = ()
    beta1: float = 1.0  # Eq. (4): weight of x_{++} > x_{+-} (A+; x_{++} > x_{-+} for B+)
    beta2: float = 1.0  # Eq. (4): weight of x_{-+} > x_{--} (A+; x_{+-} > x_{--} for B+)
    ranking_weight: float = 1.0  # the weight of L^{A+} + L^{B+} in L^{Model} (Algorithm 1, line 10)
    alpha: float = 0.5  # Eq. (7): the distillation loss's share of each task's loss
    temperature: float = 1.0  # tau of Eq. (6) (no tau^2 factor, as printed)
    margin: float = 0.0  # m of Eq. (10)
    calibrate: bool = True  # Platt scaling of the teacher's logit (Eq. (8)); false: w/o calibration
    correct: bool = True  # error correction (Eq. (10)); false: w/o correction
    calibration_learning_rate: float = 0.01  # gamma_2 of Algorithm 1 (P, Q's own SGD)
    samples: int = 0  # quadruplets drawn per set and step (Algorithm 1, lines 4-5); 0: the batch size
