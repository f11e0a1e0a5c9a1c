"""A binary label (a click, a conversion): log loss, scored by AUC and log loss.

The loss is Eq. (6) of the PFD paper, the mean over the batch of
y log(1 + e^-f) + (1 - y) log(1 + e^f) on the logit f; the metrics are the
progress AUC (few thresholds; held-out AUCs are exact, `pfd_tf.evaluation`)
and the log loss, under `pfd_tf.names`' keys.
"""
from __future__ import annotations

from pfd_tf._keras import keras, tf
from pfd_tf.names import auc_key, logloss_key
from pfd_tf.tasks.task import Task

# Progress AUCs only: few evenly spaced thresholds, so each step's update and read of their accumulators
# stays cheap next to the embedding lookups.
AUC_THRESHOLDS = 200


class BinaryTask(Task):
    kind = "binary"

    def loss(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        """Eq. (6): the mean sigmoid cross entropy of `logits` against 0/1 `labels`."""
        labels = tf.cast(labels, logits.dtype)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))

    def metrics(self, who: str) -> list[tuple[str, keras.metrics.Metric]]:
        """`<who>_auc` and `<who>_logloss` (`<who>_<task>_auc`, ... for a task not the served one)."""
        key = self.key(who)
        return [(f"{key}_logits", keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS, from_logits=True,
                                                    name=auc_key(key))),
                (f"{key}_logits", keras.metrics.BinaryCrossentropy(from_logits=True, name=logloss_key(key)))]
