"""The divergence guard: a run whose log loss blew up while staying finite stops with exit status 4.

`pfd_tf.callbacks.StopOnNonFiniteLoss` stops a run whose loss became NaN or
infinite.  A run can also blow up and stay finite: the ensemble world's
shipped config at learning rate 1.6 reached a training loss of 6e8 by step
100 and a student whose held-out log loss was 15.9 (AUC 0.49), and exported
it with exit status 0.  The yardstick here is the constant predictor.  A
network that predicts the base rate p for every row has log loss
H(p) = -p ln p - (1-p) ln(1-p), at most ln 2; one that has learnt nothing
(logits 0, where every network starts) has exactly ln 2.  A run has
diverged when

1. during training, at the end of a Keras epoch (`train.log_every` steps: the
   only callbacks ParameterServerStrategy runs), the epoch's mean label log
   loss of a network being trained (`<name>_logloss` of each student, and of
   each co-trained teacher) is above ln 2 + `train.divergence_training_margin`.
   ln 2, not H(p): the training base rate is not known without a pass over
   the training labels, and ln 2 >= H(p).  It runs before the epoch's
   checkpoint is written (listed before `CheckpointEveryEpoch`), so blown-up
   weights are never saved;
2. after training, a trained student's held-out log loss (what metrics.json
   would report, of the model that would be exported) is above the held-out
   rows' label entropy H(q) + `train.divergence_margin`.  H(q) is the log
   loss of the best constant predictor on those rows: no constant, the
   training base rate included, does better.  Nothing is exported and no
   metrics.json is written.  Teachers are held to rule 1 only: a short run
   may leave a co-trained teacher overconfident on the held-out rows (the
   suite's target-attention teacher: H(q) + 3.2 after its few steps) while
   its student is sound.

The two margins (nats) sit between what the test suite's short and poor
runs reach and what blown-up runs reach, measured with the guard's values
logged over the 18 test files that train (292 epoch checks, 104 held-out
checks).  Training, default 20: zoo networks do not start at logits 0, and
a few steps of Adam at 0.05 took the suite's Criteo DeepFM teacher to an
epoch mean of ln 2 + 5.3 to 5.9 (it recovers), against ln 2 + 3.3e4 or more
for the students of the ensemble config at learning rate 1.6 in their first
100 steps (seeds 0-2), and ln 2 + 125 for a teacher of a 6,000-row ensemble
world by step 5.  Held-out, default 5: the suite's highest student is at
H(q) + 0.59; the ensemble config's students at H(q) + 15.5, 117 and 309
(seeds 1, 0, 2).  Both errors are `NonFiniteLossError`s, so whatever
catches the NaN guard's error (pfd-train's exit status 4) catches these
alike.
"""
from __future__ import annotations

import math
from typing import Mapping

from pfd_tf._keras import keras, tf
from pfd_tf.callbacks import NonFiniteLossError
from pfd_tf.names import SERVED, auc_key, logloss_key

LN2 = math.log(2.0)
CURE = "a lower train.learning_rate (or a longer train.warmup_steps) usually cures a divergence"


class DivergedError(NonFiniteLossError):
    """A finite blow-up: a log loss far above the constant predictor's; the message names the network and step."""


def trained_networks(model) -> list[str]:
    """The networks a run trains, by the names their metrics carry: the students (unless only teachers train)
    and the co-trained teachers (a pre-trained, frozen one cannot diverge here)."""
    return (list(model.student_names) if model.train_student else []) + list(model.co_trained())


def entropy(positives: int, rows: int) -> float:
    """H(q) in nats of rows whose base rate is q = positives / rows: the best constant predictor's log loss."""
    q = positives / rows
    return -sum(p * math.log(p) for p in (q, 1.0 - q) if p > 0)


class StopOnDivergence(keras.callbacks.Callback):
    """Rule 1 of the module: a Keras epoch's training log loss above ln 2 + margin stops the run."""

    def __init__(self, manager: tf.train.CheckpointManager, margin: float):
        super().__init__()
        self.manager, self.margin = manager, margin
        self._first_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._first_step = int(self.model.optimizer.iterations.numpy()) + 1

    def on_epoch_end(self, epoch, logs=None):
        limit = LN2 + self.margin
        for who in trained_networks(self.model):
            value = (logs or {}).get(f"{who}_logloss")
            if value is None or not math.isfinite(float(value)) or float(value) <= limit:
                continue  # a NaN or inf is StopOnNonFiniteLoss's to name
            step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True
            raise DivergedError(
                f"training diverged by step {step}: the mean training log loss of {_network(self.model, who)} "
                f"over steps {self._first_step}-{step} was {float(value):.4g}, above ln 2 + "
                f"train.divergence_training_margin = {limit:.4g} (a network that has learnt nothing scores ln 2 = "
                f"{LN2:.4f}); training stopped and nothing was exported. The last good checkpoint is "
                f"{self.manager.latest_checkpoint or 'none (none was written)'}; {CURE} "
                "(train.divergence_training_margin sets this guard)")


def check_held_out(results: Mapping[str, float], model, held_out: Mapping[str, int], margin: float,
                   checkpoint: str) -> None:
    """Rule 2 of the module: DivergedError if a trained student's held-out log loss is above H(q) + margin.

    `results` are an Evaluator's for `model`'s checkpoint `checkpoint`; `held_out` is `check_eval_split`'s
    count of the held-out rows.
    """
    constant = entropy(held_out["positives"], held_out["rows"])
    limit = constant + margin
    for who in model.student_names if model.train_student else ():
        value = results.get(logloss_key(who))
        if value is None or float(value) <= limit:
            continue
        auc = f", AUC {results[auc_key(who)]:.4f}" if auc_key(who) in results else ""
        raise DivergedError(
            f"training diverged: the held-out log loss of {_network(model, who)} is {float(value):.4g}{auc}, "
            f"above the constant predictor's {constant:.4f} (the held-out rows' base rate "
            f"{held_out['positives'] / held_out['rows']:.4f}) + train.divergence_margin = {limit:.4g}; nothing was "
            f"exported and no metrics.json written. The run's final checkpoint {checkpoint} holds those weights; "
            f"{CURE} (train.divergence_margin sets this guard)")


def _network(model, who: str) -> str:
    """`the student`, `student 'small'` (another student), `teacher 'fm'`."""
    if who == SERVED:
        return "the student"
    return f"{'student' if who in model.student_names else 'teacher'} {who!r}"
