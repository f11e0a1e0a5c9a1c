"""A grouped batch of only empty groups is no training step: not even the optimizer's step count moves.

A grouped cluster run ends with padding, batches of empty groups, read while
the run goes on until every group of it is trained
(`pfd_tf.cluster.grouped_service`, `pfd_tf.cluster.drain`); the rows and the
groups a real batch trains are counted (`Distiller.trained_rows`,
`trained_groups`): what the drain waits for, and `metrics.json`'s
`examples`.

The choice is made in cross-replica context (a `merge_call`) and the step is
run in a replica context of its own, as tf_keras' LossScaleOptimizer skips a
step: a `tf.cond` in a replica context may not hold a branch that calls
`merge_call`, and `apply_gradients` does (ParameterServerStrategy).
"""
from __future__ import annotations

from pfd_tf._keras import tf
from pfd_tf.names import GROUP


def train_unless_empty(model, ids, labels, gate_batch) -> dict:
    """`model`'s train step on `(ids, labels)` (with `labels[GROUP]`) if the batch has rows; else its metrics as
    they are."""
    def choose(strategy, ids, labels, gate_batch):
        rows = tf.shape(labels[GROUP], out_type=tf.int64)[0]

        def train():
            return strategy.extended.call_for_each_replica(_train_counted, args=(model, ids, labels, gate_batch, rows))

        return tf.cond(rows > 0, train, lambda: {metric.name: metric.result() for metric in model.metrics})

    return tf.distribute.get_replica_context().merge_call(choose, args=(ids, labels, gate_batch))


def _train_counted(model, ids, labels, gate_batch, rows):
    model.trained_rows.assign_add(rows)
    model.trained_groups.assign_add(tf.size(tf.unique(tf.reshape(labels[GROUP], [-1])).y, out_type=tf.int64))
    return model.train_on(ids, labels, gate_batch)
