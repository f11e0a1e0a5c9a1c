"""A warning that cannot be missed when a run is too short, or its data too small, to learn from.

The shipped Criteo and Avazu configs are the paper's (batch 2,000, one
epoch: Section 4.1.3 of "Ensembled CTR Prediction via Knowledge
Distillation"), sized for 40 million rows.  On the public 8-9k-row samples
they run 3 or 4 steps and score a held-out AUC of 0.45-0.53, and a log loss
above the constant predictor's, with exit status 0.  Two measures say so before the
run trains, printed once on stderr with what to do:

- **steps** (`MIN_STEPS`): the optimizer steps the run takes.  Under Adam
  at the shipped 0.001 each step moves a weight by about the learning
  rate, so 4 steps leave every weight within 0.004 of its initialization.
  On Criteo-format data of 8,000 rows (`tests/criteo_avazu_files.py`) the
  student's held-out AUC was 0.533 at 3 steps and 0.666 at 50 (batch 256,
  2 epochs: docs/results.md, "Small data").  A warm-up longer than the
  run is refused by the config's checks already, so the floor is a number
  of steps, not the warm-up's.
- **training rows per student field** (`MIN_ROWS_PER_FIELD`): the training
  rows divided by the number of features the student reads.  Every field
  brings its own embedding table and its share of the first layer's
  weights; the usual rule for logistic models asks for at least 10 events
  of the rarer class per estimated parameter (Peduzzi et al., J. Clin.
  Epidemiol. 1996).  At a click rate of 20-25%, 500 rows per field hold
  100-125 clicks, 10 for each of about ten effective parameters per field,
  which is little for a field of a CTR model.  The Criteo sample has 164
  (6,400 rows over 39 fields), the CVR world of `pfd-data` about 13,000.

The recipe (`RECIPE_BATCH`, `RECIPE_EPOCHS`) is what was measured on such a
sample: more, smaller steps over the same rows.
"""
from __future__ import annotations

import math
import sys
from typing import TextIO

from pfd_tf.config import Config

MIN_STEPS = 50
MIN_ROWS_PER_FIELD = 500
RECIPE_BATCH = 256
RECIPE_EPOCHS = 2


def recipe_epochs(train_rows: int) -> int:
    """RECIPE_EPOCHS, or as many as MIN_STEPS steps of RECIPE_BATCH rows need over fewer rows."""
    return max(RECIPE_EPOCHS, math.ceil(MIN_STEPS * RECIPE_BATCH / max(train_rows, 1)))


def small_data_warning(config: Config, train_rows: int) -> str | None:
    """The warning for a run (its length resolved in steps: `config.resolve_length`), or None."""
    steps, batch = config.train.steps, config.train.batch_size
    fields = len(config.student_features)
    per_field = train_rows / max(fields, 1)
    reasons = []
    if steps < MIN_STEPS:
        reasons.append(f"it trains {steps} steps (fewer than {MIN_STEPS}): batches of {batch} over "
                       f"{train_rows:,} training rows: too few updates to learn from")
    if per_field < MIN_ROWS_PER_FIELD:
        reasons.append(f"it has {per_field:,.0f} training rows per student field ({train_rows:,} rows, "
                       f"{fields} fields; fewer than {MIN_ROWS_PER_FIELD}): the student can fit noise")
    if not reasons:
        return None
    epochs = recipe_epochs(train_rows)
    recipe_steps = max(1, round(epochs * train_rows / RECIPE_BATCH))
    rule = "=" * 100
    return "\n".join([
        rule,
        "WARNING: small data: this run's held-out AUC may say little (it can fall below 0.5):",
        *(f"  - {reason}." for reason in reasons),
        f"  The small-data recipe: --set train.batch_size={RECIPE_BATCH} --set train.epochs={epochs} "
        f"({recipe_steps} steps here); more training rows help most (README, \"Small data\").",
        rule,
    ])


def warn_if_small(config: Config, train_rows: int, stream: TextIO | None = None) -> bool:
    """Prints `small_data_warning` on stderr (or `stream`) if there is one; returns whether it did."""
    text = small_data_warning(config, train_rows)
    if text:
        print(text, file=stream or sys.stderr, flush=True)
    return text is not None
