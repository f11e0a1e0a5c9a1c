"""The three loss terms of Eq. (5) of the PFD paper, and the embedding rows' L2, as plain functions.

L_t and L_s are the log-loss of Eq. (6) on the hard labels.  L_d is the
cross entropy of the student against the teacher's soft label
sigmoid(z_t / tau), with the teacher's logit behind `stop_gradient` so that
L_d never reaches the teacher (Algorithm 1, line 9: "No distillation loss").
"""
from __future__ import annotations

from pfd_tf._keras import tf


def logloss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Eq. (6): mean of y*log(1+e^-f) + (1-y)*log(1+e^f)."""
    labels = tf.cast(labels, logits.dtype)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def distillation_loss(teacher_logits: tf.Tensor, student_logits: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    """L_d = tau^2 * CE(sigmoid(sg(z_t)/tau), sigmoid(z_s/tau)).

    With tau = 1 this is exactly the paper's L_d (Eq. (6) with y replaced by
    the teacher's probability).  For tau > 1 both logits are softened and the
    tau^2 factor keeps the gradient's scale independent of tau (Hinton et al.).
    """
    soft_labels = tf.sigmoid(tf.stop_gradient(teacher_logits) / temperature)
    per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=soft_labels, logits=student_logits / temperature)
    return (temperature**2) * tf.reduce_mean(per_example)


def rows_l2(rows: list[tf.Tensor], weight: float) -> tf.Tensor:
    """`train.embedding_l2`: weight * (sum of squares of the embedding rows a batch read) / batch size.

    L2 on the rows a batch reads, not on whole tables: a whole-table penalty
    would make every table's gradient dense (each parameter server shard
    pushed in full every step).  `rows`: `[batch, ...]` tensors, each row once.
    """
    batch = tf.cast(tf.shape(rows[0])[0], tf.float32)
    return weight * tf.add_n([tf.reduce_sum(tf.square(r)) for r in rows]) / batch
