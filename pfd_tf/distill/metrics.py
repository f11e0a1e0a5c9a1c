"""The distiller's progress metrics: what Keras logs each epoch and TensorBoard shows.

Part of `pfd_tf.distill.distiller`; the names are `pfd_tf.names`' keys.
"""
from __future__ import annotations

from pfd_tf._keras import keras
from pfd_tf.names import auc_key, logloss_key

# Progress AUCs only (held-out AUCs are exact, pfd_tf.evaluation): few evenly spaced thresholds, so
# each step's update and read of their accumulators stays cheap next to the embedding lookups.
AUC_THRESHOLDS = 200


def metrics_for(model) -> list[tuple[str, keras.metrics.Metric, bool]]:
    """(key of `compute_losses`, metric, whether it reads the labels) for each progress metric.

    Names as Keras logs them: `loss`; per student and per teacher `loss_<name>`, `<name>_auc`,
    `<name>_logloss` (the served student is `student`); each distillation term's key (`loss_distill`,
    `loss_distill_<name>` for another student, `loss_logit_matching`, `loss_hint`), `lambda`, `loss_l2`; with several teachers `ensemble_auc`, `ensemble_logloss`,
    `loss_gate`, `alpha_<name>`.
    """
    mean = keras.metrics.Mean

    def scored(who):
        key = f"{who}_logits"
        return [(f"loss_{who}", mean(name=f"loss_{who}"), False),
                (key, keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS, from_logits=True, name=auc_key(who)), True),
                (key, keras.metrics.BinaryCrossentropy(from_logits=True, name=logloss_key(who)), True)]

    metrics = [("loss", mean(name="loss"), False)]
    if model.train_student:
        for name in model.student_names:
            metrics += scored(name)
    for name in model.teacher_names:
        metrics += scored(name)
    if model.embedding_l2:
        metrics.append(("loss_l2", mean(name="loss_l2"), False))
    if model.teacher_names and model.train_student:
        mixing = [term.key for term in model.terms if term.mix]
        metrics += [(key, mean(name=key), False) for key in mixing]
        metrics.append(("lambda", mean(name="lambda"), False))
        metrics += [(term.key, mean(name=term.key), False) for term in model.terms if not term.mix]
        if model.ensemble is not None:
            metrics += scored("ensemble")[1:]
            if model.ensemble.trainable_variables:
                metrics.append(("loss_gate", mean(name="loss_gate"), False))
            metrics += [(f"alpha_{name}", mean(name=f"alpha_{name}"), False) for name in model.teacher_names]
    return metrics
