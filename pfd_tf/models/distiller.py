"""The distiller: a teacher and a student trained together by Algorithm 1.

`Distiller` is a thin `keras.Model` that owns the maths of one step, so stock
`Model.fit` does the looping (and, under ParameterServerStrategy, the
scheduling, retries and checkpoint callbacks).  Per step, Eq. (5) of the PFD
paper:

    loss = (1 - lambda_i) * L_s + lambda_i * L_d + L_t

with lambda_i = 0 while the step i < swap_step k and the configured lambda
afterwards (the warm-up of Section 4).  Because L_d sees the teacher's logit
through `stop_gradient`, the teacher-only weights receive exactly grad L_t,
the student-only weights (1 - lambda_i) grad L_s + lambda_i grad L_d, and the
shared embeddings the sum of both (Share&Sync).  The step number is
`optimizer.iterations`, a checkpointed variable, so the warm-up position
survives a restart.

Without a teacher (mode `baseline`) the loss is L_s alone.  With
`train.embedding_l2` every loss gains an L2 term on the embedding rows the
batch read (`_regularized`).  A frozen
(pre-trained, Ind&Async) teacher runs in inference mode and has no L_t.
Pre-training that teacher (Ind&Async's first stage, `train_student=False`)
computes the teacher alone: the loss is L_t and the student is frozen.

Each step builds one `FeatureBank` over the batch and hands it to both
networks: a table they share is looked up once (one gather, one gradient
push under ParameterServerStrategy, carrying the sum of both losses'
gradients), and so is a shared input layer such as the behaviour encoder.
"""
from __future__ import annotations

from typing import Mapping

from pfd_tf._keras import keras, tf
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.losses import distillation_loss, logloss
from pfd_tf.models.ranker import Ranker

# Progress AUCs only (held-out AUCs are exact, pfd_tf.evaluation): few evenly spaced thresholds, so
# each step's update and read of their accumulators stays cheap next to the embedding lookups.
AUC_THRESHOLDS = 200


class Distiller(keras.Model):
    def __init__(
        self,
        student: Ranker,
        teacher: Ranker | None = None,
        lambda_: float = 0.5,
        swap_step: int = 0,
        temperature: float = 1.0,
        train_student: bool = True,
        visit_feature: str = "",
        visit_ids: int = 0,
        embedding_l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not train_student and teacher is None:
            raise ValueError("train_student=False needs a teacher to train")
        self.student = student
        self.teacher = teacher
        self.lambda_ = float(lambda_)
        self.swap_step = int(swap_step)
        self.temperature = float(temperature)
        self.train_student = bool(train_student)
        self.embedding_l2 = float(embedding_l2)
        if not train_student:
            student.trainable = False
        # How often the train step has seen each id of `visit_feature` (train.count_visits):
        # which rows a run trained on, in the checkpoint beside the weights.
        self.visit_feature = visit_feature
        # The first step (1-based) whose loss was NaN or infinite, 0 while none was: what
        # `pfd_tf.callbacks.StopOnNonFiniteLoss` names when it stops a diverged run.
        self.nonfinite_step = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="nonfinite_step")
        self.visits = None
        if visit_feature:
            self.visits = tf.Variable(tf.zeros([visit_ids], tf.int32), trainable=False, name="visits")

        def mean(name):
            return keras.metrics.Mean(name=name)

        self.loss_tracker = mean("loss")
        self._metrics = [self.loss_tracker]
        if train_student:
            self.student_loss_tracker = mean("loss_student")
            self.student_auc = keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS, from_logits=True, name="student_auc")
            self.student_logloss = keras.metrics.BinaryCrossentropy(from_logits=True, name="student_logloss")
            self._metrics += [self.student_loss_tracker, self.student_auc, self.student_logloss]
        if teacher is not None:
            self.teacher_loss_tracker = mean("loss_teacher")
            self.teacher_auc = keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS, from_logits=True, name="teacher_auc")
            self.teacher_logloss = keras.metrics.BinaryCrossentropy(from_logits=True, name="teacher_logloss")
            self._metrics += [self.teacher_loss_tracker, self.teacher_auc, self.teacher_logloss]
        if self.embedding_l2:
            self.l2_loss_tracker = mean("loss_l2")
            self._metrics.append(self.l2_loss_tracker)
        if teacher is not None and train_student:
            self.distill_loss_tracker = mean("loss_distill")
            self.lambda_tracker = mean("lambda")
            self._metrics += [self.distill_loss_tracker, self.lambda_tracker]

    @property
    def metrics(self):
        # Listed here so that fit/evaluate reset them at each epoch.
        return list(self._metrics)

    @property
    def teacher_trainable(self) -> bool:
        return self.teacher is not None and self.teacher.trainable

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        """The student's logits: what gets served."""
        return self.student(ids, training=training)

    def current_lambda(self) -> tf.Tensor:
        """lambda_i of Algorithm 1: 0 before the swapping step, lambda from it on."""
        step = self.optimizer.iterations if self.optimizer is not None else tf.constant(0, tf.int64)
        return tf.where(tf.cast(step, tf.int64) >= self.swap_step, self.lambda_, 0.0)

    def shared_inputs(self) -> list:
        """Input layers (e.g. the behaviour-sequence encoder) that teacher and student both use.

        `compute_losses` runs each of them once per step (through the step's
        `FeatureBank`).  A frozen teacher runs in inference mode, so it shares
        the tables' rows but not the layers' outputs.
        """
        if self.teacher is None or not self.teacher_trainable:
            return []
        teacher = {id(layer) for layer in self.teacher.all_input_layers}
        return [layer for layer in self.student.all_input_layers if id(layer) in teacher]

    def compute_losses(self, ids, labels, training: bool) -> dict[str, tf.Tensor]:
        """Every term of Eq. (5) for one batch, plus the logits.

        A shared input component is computed once and fed to both networks
        (Section 4: sharing "the components of processing the user
        clicked/purchased behavior, which is known to be costly"), and every
        table is looked up once: both networks read one `FeatureBank`.
        """
        bank = FeatureBank(ids)
        if not self.train_student:
            teacher_logits = self.teacher(ids, training=training, bank=bank)
            loss = logloss(labels, teacher_logits)
            return self._regularized({"teacher_logits": teacher_logits, "loss_teacher": loss, "loss": loss}, bank)
        out = {"student_logits": self.student(ids, training=training, bank=bank)}
        out["loss_student"] = logloss(labels, out["student_logits"])
        if self.teacher is None:
            out["loss"] = out["loss_student"]
            return self._regularized(out, bank)
        teacher_logits = self.teacher(ids, training=training and self.teacher_trainable, bank=bank)
        lam = self.current_lambda()
        out["teacher_logits"] = teacher_logits
        out["lambda"] = lam
        out["loss_teacher"] = logloss(labels, teacher_logits)
        out["loss_distill"] = distillation_loss(teacher_logits, out["student_logits"], self.temperature)
        out["loss"] = (1.0 - lam) * out["loss_student"] + lam * out["loss_distill"]
        if self.teacher_trainable:
            out["loss"] += out["loss_teacher"]
        return self._regularized(out, bank)

    def _regularized(self, out: dict, bank: FeatureBank) -> dict:
        """Adds `loss_l2` = embedding_l2 * (sum of squares of the rows this batch read) / batch size.

        L2 on the rows a batch reads, not on whole tables: a whole-table
        penalty would make every table's gradient dense (each parameter
        server shard pushed in full every step).  Rows read by both networks
        (Share&Sync) are penalized once; a frozen teacher's tables not at all.
        """
        if not self.embedding_l2:
            return out
        rows = bank.trainable_rows()
        batch = tf.cast(tf.shape(rows[0])[0], tf.float32)
        out["loss_l2"] = self.embedding_l2 * tf.add_n([tf.reduce_sum(tf.square(r)) for r in rows]) / batch
        out["loss"] = out["loss"] + out["loss_l2"]
        return out

    def train_step(self, data):
        ids, labels = data
        with tf.GradientTape() as tape:
            out = self.compute_losses(ids, labels, training=True)
        variables = self.trainable_variables
        gradients = tape.gradient(out["loss"], variables)
        tf.cond(tf.math.is_finite(out["loss"]), tf.no_op, self._note_nonfinite_step)
        self.optimizer.apply_gradients(zip(gradients, variables))
        if self.visits is not None:
            rows = tf.reshape(ids[self.visit_feature], [-1, 1])
            self.visits.scatter_nd_add(rows, tf.ones_like(rows[:, 0], tf.int32))
        return self._update_metrics(out, labels)

    def _note_nonfinite_step(self):
        step = tf.cast(self.optimizer.iterations, tf.int64) + 1
        first = tf.where(self.nonfinite_step > 0, self.nonfinite_step, step)
        self.nonfinite_step.assign(first)
        return tf.no_op()

    def test_step(self, data):
        ids, labels = data
        return self._update_metrics(self.compute_losses(ids, labels, training=False), labels)

    def _update_metrics(self, out, labels) -> dict[str, tf.Tensor]:
        self.loss_tracker.update_state(out["loss"])
        if self.embedding_l2:
            self.l2_loss_tracker.update_state(out["loss_l2"])
        if self.train_student:
            self.student_loss_tracker.update_state(out["loss_student"])
            self.student_auc.update_state(labels, out["student_logits"])
            self.student_logloss.update_state(labels, out["student_logits"])
        if self.teacher is not None:
            self.teacher_loss_tracker.update_state(out["loss_teacher"])
            if self.train_student:
                self.distill_loss_tracker.update_state(out["loss_distill"])
                self.lambda_tracker.update_state(out["lambda"])
            self.teacher_auc.update_state(labels, out["teacher_logits"])
            self.teacher_logloss.update_state(labels, out["teacher_logits"])
        return {m.name: m.result() for m in self.metrics}
