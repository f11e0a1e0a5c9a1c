"""One step's losses: every network's forward pass over one `FeatureBank`, their hard-label losses, the soft
label and the distillation terms, summed into the loss `Distiller.train_step` differentiates.

Eq. (5) of the PFD paper, (1 - lambda_i) L_s + lambda_i L_d + L_t, generalized to Eq. (7) of Zhu et al.
2020 (several teachers, a list of terms: `pfd_tf.distill.term_list`).  Each step builds one `FeatureBank`
over the batch and hands it to every network: a table they share is looked up once (one gather, one
gradient push under ParameterServerStrategy, carrying the sum of all losses' gradients), and so is a shared
input layer such as the behaviour encoder.  The teachers' outputs reach the students' terms only through
`pfd_tf.distill.routing.detach`.

The gate on validation rows (`distill.gate_data: validation`, `pfd_tf.distill.gate_data`): `loss_gate` is
the ensemble's log loss on a second batch, from the teachers' detached logits in inference mode, so the
gate moves by those rows only and nothing else moves by them.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import tf
from pfd_tf.distill import routing
from pfd_tf.distill.ensemble import gate_loss_on
from pfd_tf.distill.losses import rows_l2
from pfd_tf.distill.term_list import add_terms
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.tasks.labels import hard_label_loss


def compute_losses(model, ids, labels, training: bool, gate_batch=None) -> dict[str, tf.Tensor]:
    """Every loss of `model` (a `Distiller`) for one batch, plus the logits (keys: `pfd_tf.distill.distiller`).

    `gate_batch` (`(ids, labels)` of other rows): the gate's loss is computed on them
    (`pfd_tf.distill.ensemble.gate_loss_on`), not on this batch.

    A shared input component is computed once and fed to every network
    (Section 4 of the PFD paper: sharing "the components of processing the
    user clicked/purchased behavior, which is known to be costly"), and
    every table is looked up once: all networks read one `FeatureBank`.
    """
    # The gate's own rows first: the teachers' batch-norm statistics, which training on this batch updates,
    # must not carry this batch into the gate's step.
    labels = model.labels_by_task(labels)
    gate_loss = None
    if gate_batch is not None and model.train_student:
        gate_ids, gate_labels = gate_batch
        gate_loss = gate_loss_on(model.ensemble, [model.teachers[n] for n in model.teacher_names], gate_ids,
                                 model.labels_by_task(gate_labels)[model.tasks[0].name])
    bank = FeatureBank(ids)
    out, loss = {}, tf.constant(0.0)
    teachers = {}
    for name, teacher in model.teachers.items():
        teachers[name] = teacher.forward(ids, training=training and teacher.trainable, bank=bank)
        out[f"loss_{name}"] = hard_label_loss(model.tasks, name, teachers[name], labels, out)
        if teacher.trainable:
            loss += out[f"loss_{name}"]
    if not model.train_student:
        out["loss"] = loss
        return regularized(out, bank, model.embedding_l2)
    students, task_losses = {}, {}
    for name, network in model.students.items():
        students[name] = network.forward(ids, training=training, bank=bank)
        task_losses[name] = {}
        out[f"loss_{name}"] = hard_label_loss(model.tasks, name, students[name], labels, out, task_losses[name])
    if not teachers:
        out["loss"] = tf.add_n([out[f"loss_{name}"] for name in students])
        if model.crossdistil is not None:
            out["loss"] = model.crossdistil_loss(students, labels, task_losses, out)
        return regularized(out, bank, model.embedding_l2)
    seen = {name: routing.detach(output) for name, output in teachers.items()}
    soft = soft_logits(model, seen, labels, out)
    if gate_loss is not None:
        out["loss_gate"] = gate_loss
    out["lambda"] = model.current_lambda()
    loss = add_terms(loss, model.terms, model.optimizer_step(), students, soft, seen, out, labels, task_losses)
    out["loss"] = loss + out.get("loss_gate", 0.0)
    return regularized(out, bank, model.embedding_l2)


def soft_logits(model, seen: Mapping, labels, out: dict) -> tf.Tensor:
    """The logit the student's soft label comes from: the one teacher's, or the ensemble's (Eq. (10) of Zhu
    et al.), with the gate's loss on this batch when the gate trains on the training rows."""
    if model.ensemble is None:
        return next(iter(seen.values())).logits
    logits, alpha = model.ensemble(tf.stack([seen[name].logits for name in model.teacher_names], axis=-1))
    served = model.tasks[0]
    out[f"{served.key('ensemble')}_logits"] = logits
    if model.ensemble.trainable_variables:
        out["loss_gate"] = served.loss(labels[served.name], logits)
    for i, name in enumerate(model.teacher_names):
        out[f"alpha_{name}"] = tf.reduce_mean(alpha[:, i])
    return logits


def regularized(out: dict, bank: FeatureBank, embedding_l2: float) -> dict:
    """Adds `loss_l2` (`pfd_tf.distill.losses.rows_l2`) on the trainable rows this batch read: rows read
    by several networks (Share&Sync) are penalized once; a frozen teacher's tables not at all."""
    if not embedding_l2:
        return out
    out["loss_l2"] = rows_l2(bank.trainable_rows(), embedding_l2)
    out["loss"] = out["loss"] + out["loss_l2"]
    return out
