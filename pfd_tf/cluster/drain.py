"""The end of a grouped cluster run: steps go on until every group of the run is trained.

Under ParameterServerStrategy the coordinator hands each step to whichever
worker is free, and each worker's tf.data service client holds a few groups
read ahead; when the planned steps are done, a worker can still hold groups
of the run that it was never given a step to train, while the others read
on.  The grouped stream therefore ends with padding (batches of empty
groups, no step: `pfd_tf.cluster.grouped_service`), and `fit` goes on, past
the planned steps, until `Distiller.trained_groups` has counted every group
of the run.  From the planned end on, `DrainHeldGroups` waits for the steps
in flight (the coordinator's `join`) and reads the count after one step per
worker: both workers then wait for a step, the coordinator wakes its
workers' threads in the order they began to wait, so the next steps go to
one worker each, and a worker that holds groups trains them.
"""
from __future__ import annotations

import math

from pfd_tf._keras import keras, tf

# fit's epochs past the planned ones, at most, in which the drain may go on: enough for the padding (whose
# last batches a lost worker's groups leave to be made up from the overflow) at one step an epoch.
DRAIN_STEPS = 4096


def drained_fit(start_step: int, steps: int, log_every: int) -> tuple[int, int, int]:
    """`(initial_epoch, epochs, steps_per_epoch)` of the one `fit` call of a drained run: epochs of
    `log_every` steps from `start_step`, and room after `steps` for the drain (`DRAIN_STEPS`)."""
    return start_step // log_every, math.ceil((steps + DRAIN_STEPS) / log_every), log_every


class DrainHeldGroups(keras.callbacks.Callback):
    """Stops `fit` once `model.trained_groups` has grown by `groups` (the run's), not before.

    `planned_steps`: the steps this `fit` call trains if nothing is held at
    the end; `workers`: the training workers.  Before the planned steps are
    scheduled nothing is read (no extra round trip per step).
    """

    def __init__(self, groups: int, planned_steps: int, steps_per_epoch: int, workers: int):
        super().__init__()
        self._supports_tf_logs = True  # never reads the logs (RemoteValues under ParameterServerStrategy): allowed
        self.groups, self.planned_steps = groups, planned_steps
        self.steps_per_epoch, self.workers = steps_per_epoch, max(1, workers)
        self.first_epoch = self.epoch = 0
        self.target = self.checks = 0

    def on_train_begin(self, logs=None):
        self.target = int(self.model.trained_groups.numpy()) + self.groups
        self.first_epoch = self.epoch = -1
        self.checks = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch < 0:
            self.first_epoch = epoch
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        scheduled = (self.epoch - self.first_epoch) * self.steps_per_epoch + batch + 1
        if scheduled < self.planned_steps:
            return
        self.checks += 1
        if (self.checks - 1) % self.workers:  # one step per worker between reads
            return
        strategy = self.model.distribute_strategy
        if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
            tf.distribute.experimental.coordinator.ClusterCoordinator(strategy).join()  # fit's own (one a strategy)
        if int(self.model.trained_groups.numpy()) >= self.target:
            self.model.stop_training = True
