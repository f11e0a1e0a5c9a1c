"""The distiller's progress metrics: what Keras logs each epoch and TensorBoard shows.

Part of `pfd_tf.distill.distiller`; the names are `pfd_tf.names`' keys.
"""
from __future__ import annotations

from pfd_tf._keras import keras
from pfd_tf.distill.crossdistil_part import augmented_key
from pfd_tf.names import SERVED, auc_key
from pfd_tf.tasks.binary import AUC_THRESHOLDS


def metrics_for(model) -> list[tuple[str, keras.metrics.Metric, str]]:
    """(key of `compute_losses`, metric, the name of the task whose labels it reads, or "") for each metric.

    Names as Keras logs them: `loss`; per student and per teacher `loss_<name>` and each task's metrics
    (`pfd_tf.tasks`: for the one task of `data.label`, `<name>_auc` and `<name>_logloss`; the served
    student is `student`); each distillation term's key (`loss_distill`, `loss_distill_<name>` for another
    student, `loss_logit_matching`, `loss_hint`), `lambda`, `loss_l2`; with several teachers `ensemble_auc`, `ensemble_logloss`,
    `loss_gate`, `alpha_<name>`.
    """
    mean = keras.metrics.Mean

    def scored(who, tasks=model.tasks):
        return [(f"loss_{who}", mean(name=f"loss_{who}"), "")] + [
            (key, metric, task.name) for task in tasks for key, metric in task.metrics(who)]

    metrics = [("loss", mean(name="loss"), "")]
    if model.train_student:
        for name in model.student_names:
            metrics += scored(name)
    for name in model.teacher_names:
        metrics += scored(name)
    part = getattr(model, "crossdistil", None)
    if part is not None and model.train_student:  # pfd_tf.distill.crossdistil_part
        metrics += [(key, mean(name=key), "") for key in part.log_keys()]
        metrics += [(f"{augmented_key(SERVED, task)}_logits", keras.metrics.AUC(
            num_thresholds=AUC_THRESHOLDS, from_logits=True, name=auc_key(augmented_key(SERVED, task))), task)
            for task in part.task_names]
    if model.embedding_l2:
        metrics.append(("loss_l2", mean(name="loss_l2"), ""))
    if model.teacher_names and model.train_student:
        mixing = [term.key for term in model.terms if term.mix]
        metrics += [(key, mean(name=key), "") for key in mixing]
        metrics.append(("lambda", mean(name="lambda"), ""))
        metrics += [(term.key, mean(name=term.key), "") for term in model.terms if not term.mix]
        if model.ensemble is not None:
            metrics += scored("ensemble", model.tasks[:1])[1:]  # the teachers' logits combine for the served task
            if model.ensemble.trainable_variables:
                metrics.append(("loss_gate", mean(name="loss_gate"), ""))
            metrics += [(f"alpha_{name}", mean(name=f"alpha_{name}"), "") for name in model.teacher_names]
    return metrics
