"""The epoch-level callbacks of a training run (ParameterServerStrategy allows no batch-level ones).

`fit` runs in "Keras epochs" of `train.log_every` steps; at the end of each,
in this order: a non-finite loss, or a finite one far above the constant
predictor's (`pfd_tf.divergence`), stops the run before its checkpoint is
written; the checkpoint is saved (`pfd_tf.checkpoints.save`: a full disk is
an error naming the directory); a progress line names the step and the data
epoch, and the epoch's seconds are recorded.
"""
from __future__ import annotations

import logging
import math
import time

from pfd_tf import checkpoints
from pfd_tf._keras import keras, tf


class NonFiniteLossError(RuntimeError):
    """Training diverged; the message names the step and the last good checkpoint."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training when the loss of a Keras epoch is NaN or infinite.

    The distiller notes the first step whose loss was not finite
    (`Distiller.nonfinite_step`); the error names it and the last checkpoint
    written before it, which holds finite weights.  Listed before
    `CheckpointEveryEpoch`, so the diverged weights are never saved.
    """

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        step = int(self.model.nonfinite_step.numpy())
        where = f"at step {step}" if step > 0 else f"by step {int(self.model.optimizer.iterations.numpy())}"
        self.model.stop_training = True
        raise NonFiniteLossError(
            f"the training loss became {float(loss)} {where}; training stopped and nothing was exported. "
            f"The last good checkpoint is {self.manager.latest_checkpoint or 'none (none was written)'}; "
            "a lower train.learning_rate (or a longer train.warmup_steps) usually cures a divergence")


class _PerSaveRetracing(logging.Filter):
    """Drops TensorFlow's retracing warning about its own checkpoint saver, and nothing else.

    With variables on several tasks (ParameterServerStrategy), TensorFlow's
    `MultiDeviceSaver.save` defines a new `tf_function_save` at every save on
    purpose ("this will cause a function re-trace on each save ... needed to
    ensure we pick up the latest values of options",
    tensorflow/python/checkpoint/functional_saver.py); from the fifth save on
    TensorFlow warns that it retraces, which it was built to do.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("MultiDeviceSaver.save.<locals>.tf_function_save" in message and "retracing" in message)


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Saves the CheckpointManager's checkpoint at the end of each Keras epoch, numbered by step.

    A checkpoint that cannot be written is a `CheckpointError` (pfd-train's
    exit status 2) naming the directory and the last good checkpoint.
    """

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager
        logger = tf.get_logger()
        if not any(isinstance(f, _PerSaveRetracing) for f in logger.filters):
            logger.addFilter(_PerSaveRetracing())

    def on_epoch_end(self, epoch, logs=None):
        checkpoints.save(self.manager, int(self.model.optimizer.iterations.numpy()))


class Progress(keras.callbacks.Callback):
    """One line per Keras epoch: the step of the run, the pass over the training rows, the metrics.

        step 600/1366  epoch 1.76/4  loss 0.4512  student_auc 0.7012  ...  5321 rows/s
    """

    SHOWN = ("loss", "loss_student", "student_auc", "loss_teacher", "teacher_auc", "loss_distill", "lambda")

    def __init__(self, steps: int, batch_size: int, train_rows: int):
        super().__init__()
        self.steps, self.batch_size, self.train_rows = steps, batch_size, train_rows
        self._start = time.perf_counter()
        self._rows = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._rows = self._trained_rows()

    def _trained_rows(self) -> int:
        """Rows trained so far: counted by the Distiller (grouped batches vary in size), else steps x batch."""
        counted = getattr(self.model, "trained_rows", None)
        if counted is not None:
            return int(counted.numpy())
        return int(self.model.optimizer.iterations.numpy()) * self.batch_size

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        seconds = max(time.perf_counter() - self._start, 1e-9)
        trained = self._trained_rows()
        rows = trained - (self._rows or 0)
        passes = f"  epoch {trained / self.train_rows:.2f}/{self.steps * self.batch_size / self.train_rows:.2f}"
        others = tuple(f"{name}_auc" for name in getattr(self.model, "student_names", ())[1:])  # other students'
        values = "  ".join(f"{k} {float(logs[k]):.4f}" for k in self.SHOWN + others if k in (logs or {}))
        print(f"step {step}/{self.steps}{passes if self.train_rows else ''}  {values}  {rows / seconds:.0f} rows/s",
              flush=True)


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each Keras epoch; the first one includes tracing the step function."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._start, 4))
