"""Exact held-out evaluation of a checkpoint, outside any distribution strategy.

Under ParameterServerStrategy, `Model.evaluate` splits the held-out data
across workers, and exact one-pass evaluation ignores a custom `test_step`.
So the held-out numbers (the end of `pfd-train` and the sidecar evaluator
alike) come from here: the distiller is rebuilt with plain variables, the
checkpoint restored into it, and `Distiller.compute_losses` run over every
held-out row once, in this process.

The AUCs are exact (rank-based, ties averaged, `pfd_tf.metrics.exact_auc`)
over all the held-out logits at once, not Keras' `AUC` metric, whose fixed
thresholds approximate the curve.  The log losses are computed from the same
logits in float64, and the loss terms are means over rows (batch means
weighted by batch size), so a short last batch counts as much as its rows.
The keys are those of `Distiller.test_step` (`<who>_auc` and `<who>_logloss`
for the student, each teacher by name, and the ensemble), each network's
calibration (`<who>_ece`, `<who>_mean_pq`, `<who>_mean_p`: `calibration`), plus the
checkpoint's `step`;
when the held-out rows hold one class, AUC is undefined and left out.
With several tasks (`pfd_tf.tasks`), each task's logits are scored against
that task's labels, under keys carrying its name (`<who>_<task>_auc`, or
`<who>_<task>_mse` and `_rmse` for a regression task); the served task's
keys carry none; with two binary tasks, also each network's Multi-AUC of
each (CrossDistil's Eq. (12), `pfd_tf.evaluation_multi_auc`).  `summarize`
turns them into what metrics.json (and pfd-eval's JSON) reports.
"""
from __future__ import annotations

import numpy as np

from pfd_tf._keras import tf
from pfd_tf.config import Config
from pfd_tf.data.pipeline import eval_steps, make_dataset_fn
from pfd_tf.distill.build import build_distiller
from pfd_tf.distill.distiller import Distiller
from pfd_tf import evaluation_multi_auc
from pfd_tf.metrics import exact_auc, logloss_from_logits
from pfd_tf.names import PRESET_TEACHER, SERVED, auc_key, logloss_key, mse_key, rmse_key
from pfd_tf.optim import make_optimizer

ECE_BINS = 20


def calibration(labels, logits, bins: int = ECE_BINS) -> dict[str, float]:
    """How far a network's held-out probabilities p = sigmoid(logit) are from the label rates they claim.

    `ece`: expected calibration error over `bins` bins of equal count (the rows sorted by p, split into
    `bins` runs whose sizes differ by at most one; tied predictions may fall on both sides of a border):
    sum over bins of (rows in bin / rows) * |mean label - mean p|.  Equal counts, not equal widths,
    because a rare label puts most predictions in the lowest tenth of [0, 1].  `mean_pq`: the mean of
    p (1 - p), the label variance the network predicts: for a calibrated teacher E[Var(y | x, x*)],
    what its soft labels leave of the label noise (pfd_tf.compare.diagnostic).  `mean_p`: the mean
    prediction (against the label rate: calibration in the large).  Float64, every held-out row.
    """
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).reshape(-1)))
    if not y.size:
        return {}
    order = np.argsort(p, kind="stable")
    parts = zip(np.array_split(y[order], min(bins, y.size)), np.array_split(p[order], min(bins, y.size)))
    ece = sum(len(ys) * abs(ys.mean() - ps.mean()) for ys, ps in parts) / y.size
    return {"ece": float(ece), "mean_pq": float(np.mean(p * (1.0 - p))), "mean_p": float(p.mean())}


def build_local_model(config: Config) -> Distiller:
    """The distiller with plain variables in this process.

    Compiled with its optimizer built, so that a checkpoint restores the
    optimizer's `iterations`: the step that lambda_i of Eq. (5) depends on.
    Pre-trained teachers are frozen as in training (their weights come from
    the run's checkpoint, which holds them).
    """
    if tf.distribute.has_strategy():
        raise RuntimeError("build the evaluation model outside any distribution strategy scope")
    model = build_distiller(config)
    for teacher in config.teacher_specs:
        if teacher.checkpoint:  # frozen as in training, so the optimizer's slots line up with the run's
            model.teachers[teacher.name].trainable = False
    model.compile(optimizer=make_optimizer(config.train))
    model.optimizer.build(model.trainable_variables)
    return model


class Evaluator:
    """Evaluates checkpoints of one run on its held-out files; reuses one model."""

    def __init__(self, config: Config):
        self.config = config
        self.model = build_local_model(config)
        self.dataset_fn = make_dataset_fn(config, "eval", config.train.eval_batch_size, training=False)
        self.steps = eval_steps(config, self.dataset_fn.files)
        # One trace for full batches, one more (shape-relaxed) for a short last batch.
        self._batch = tf.function(self._batch_outputs, reduce_retracing=True)

    def _batch_outputs(self, ids, labels) -> dict[str, tf.Tensor]:
        """Logits and loss terms of one held-out batch, in inference mode."""
        return self.model.compute_losses(ids, labels, training=False)

    def __call__(self, checkpoint_path: str) -> dict:
        """Held-out metrics of the checkpoint, plus its global `step`."""
        tf.train.Checkpoint(model=self.model).read(checkpoint_path).expect_partial()
        labels, logits, sums, rows = {}, {}, {}, 0
        for ids, batch_labels in self.dataset_fn(None).take(self.steps):
            out = self._batch(ids, batch_labels)
            size = int(tf.size(next(iter(batch_labels.values()))))
            rows += size
            for task, values in batch_labels.items():
                labels.setdefault(task, []).append(values.numpy().reshape(-1))
            for name, value in out.items():
                if name.endswith("_logits"):
                    logits.setdefault(name, []).append(value.numpy().reshape(-1))
                else:
                    sums[name] = sums.get(name, 0.0) + float(value) * size
        if not rows:
            raise ValueError(f"no held-out rows in {self.dataset_fn.files}")
        results = {name: total / rows for name, total in sums.items()}
        tasks = self._task_of_logits()
        for key in logits:
            who = key[: -len("_logits")]
            task = tasks.get(key, self.model.tasks[0])
            results.update(_scored(who, task, np.concatenate(labels[task.name]), np.concatenate(logits[key])))
        networks = (*self.model.student_names, *self.model.teacher_names)
        results.update(evaluation_multi_auc.multi_auc_results(self.model.tasks, labels, logits, networks))
        results["step"] = int(self.model.optimizer.iterations.numpy())
        return results


    def _task_of_logits(self) -> dict:
        """`<who>_logits` key of `compute_losses` -> the task (`pfd_tf.tasks`) those logits are for."""
        networks = [*self.model.student_names, *self.model.teacher_names, "ensemble"]
        return {f"{task.key(who)}_logits": task for task in self.model.tasks for who in networks}


def _scored(who: str, task, y: np.ndarray, z: np.ndarray) -> dict[str, float]:
    """The held-out metrics of logits `z` on task `task`'s labels `y`, under keys starting `who`: exact AUC (not
    with one class: undefined, and the trainer warned), log loss and calibration for a binary task; MSE and
    RMSE for a regression task."""
    if task.kind == "regression":
        mse = float(np.mean((y.astype(np.float64) - z.astype(np.float64)) ** 2))
        return {mse_key(who): mse, rmse_key(who): float(np.sqrt(mse))}
    results = {} if y.min() == y.max() else {auc_key(who): exact_auc(y, z)}
    results[logloss_key(who)] = logloss_from_logits(y, z)
    results.update({f"{who}_{name}": value for name, value in calibration(y, z).items()})
    return results


def network_metrics(results: dict, who: str) -> dict | None:
    """{"logloss", "auc"} of one network (`student`, a teacher's name, `ensemble`), or None if not scored."""
    if logloss_key(who) not in results:
        return None
    out = {"logloss": float(results[logloss_key(who)])}
    if auc_key(who) in results:
        out["auc"] = float(results[auc_key(who)])
    return out


def summarize(results: dict, teacher_names, tasks=(), student_names=(SERVED,)) -> dict:
    """The held-out numbers as metrics.json reports them: the student, the teacher (the preset's one),
    every teacher by name, the ensemble of several teachers, and each teacher's mean weight in it
    (alpha_i of Eq. (11) of Zhu et al.; 1/M for the average), all on the served task.  With several `tasks`
    (`pfd_tf.tasks`), `tasks`: task name -> network -> its metrics on that task; with several students,
    `students` holds every other student's numbers by name (the served one stays under `student`)."""
    by_task = {}
    if len(tasks) > 1:
        by_task = {"tasks": {task.name: {who: _task_metrics(results, task.key(who), task.kind)
                                         for who in (*student_names, *teacher_names)} for task in tasks}}
    summary = {
        SERVED: network_metrics(results, SERVED),
        PRESET_TEACHER: network_metrics(results, PRESET_TEACHER),
        "teachers": {name: network_metrics(results, name) for name in teacher_names},
        "ensemble": network_metrics(results, "ensemble"),
        "ensemble_weights": {name: float(results[f"alpha_{name}"]) for name in teacher_names
                             if f"alpha_{name}" in results},
        **by_task,
        **evaluation_multi_auc.summary(results, tasks, (*student_names, *teacher_names)),
    }
    if len(student_names) > 1:
        summary["students"] = {name: network_metrics(results, name) for name in student_names[1:]}
    return summary


def _task_metrics(results: dict, who: str, kind: str) -> dict | None:
    """`network_metrics` for a binary task, {"mse", "rmse"} for a regression one (None if not scored)."""
    if kind != "regression":
        return network_metrics(results, who)
    return {"mse": float(results[mse_key(who)]), "rmse": float(results[rmse_key(who)])} if mse_key(who) in results \
        else None
