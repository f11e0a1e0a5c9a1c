"""The config's `train:` section: the optimizer, the run's length, warm-up, evaluation, early stopping
(Section 3.4.2 of the ensemble-distillation paper) and the divergence guard."""
from __future__ import annotations

import dataclasses
import enum


class Optimizer(str, enum.Enum):
    ADAGRAD = "adagrad"  # the paper's (Section 5.1)
    ADAM = "adam"


class EarlyStopping(str, enum.Enum):
    """What decides when a run stops early and which checkpoint is its result (Section 3.4.2)."""

    NONE = "none"
    DISTILLATION = "distillation"  # the student's distillation loss on the validation files (lower is better)
    AUC = "auc"  # validation AUC: the student's, or the teachers' mean when only teachers train


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
