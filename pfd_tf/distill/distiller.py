"""The distiller: teachers and a student trained together by Algorithm 1.

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

Without a teacher (mode `baseline`) the loss is L_s alone; with
`train.embedding_l2` every loss gains an L2 term on the embedding rows the
batch read.  A frozen (pre-trained, Ind&Async) teacher runs in inference
mode and has no L_t.  Pre-training that teacher (Ind&Async's first stage,
`train_student=False`) computes the teacher alone: the loss is L_t and the
student is frozen.  One step's losses are assembled, over one `FeatureBank`
that every network reads, in `pfd_tf.distill.step_loss`.

Beyond one teacher (Zhu et al. 2020): `teachers` is a mapping name ->
network, each co-trained (its L_T added, Eq. (6)) or frozen (pre-train
scheme: inference mode, no loss).  Several teachers' logits become one soft
label through `ensemble` (average or gating, Eq. (10)-(11); the gate's own
loss is `loss_gate`).  The student's loss is Eq. (7),
(1 - lambda_i) L_CE + lambda_i L_KD + hint_i L_hint, generalized to a list
of terms (`terms`, `pfd_tf.distill.term_list`: soft label, hint, logit
matching, each with its target student, weight and start step, from the
config's `distill.terms` or its shorthand), objects that see the teachers'
outputs through `pfd_tf.distill.routing.detach`.  `loss_groups` says which
variable groups each loss may move (`pfd_tf.distill.routing`).

Students are a mapping too (`students`, name -> network; one, named
`student`, unless given).  The first is the served one and must be named
`student` (`model/student` in checkpoints, what `call` returns); another
student `<name>` sits at `model/student_<name>`, has its own L_CE and soft
label (keys `<name>_logits`, `loss_<name>`, `loss_distill_<name>`) and never
moves the served student's own variables, nor they its.

The keys of `compute_losses`, for metrics, evaluation and logs: per teacher
`<name>_logits` and `loss_<name>` (the one preset teacher is named
`teacher`: `teacher_logits`, `loss_teacher`), `student_logits`,
`loss_student`, each term's key (`loss_distill`, `loss_logit_matching`,
`loss_hint`), `ensemble_logits`,
`loss_gate`, `alpha_<name>` (each teacher's mean ensemble weight), `lambda`,
`loss_l2`, `loss`.

The hard labels are tasks (`pfd_tf.tasks`): `labels` is a mapping, task name
-> `[batch]` labels (the pipeline's), and L_t and L_s are each network's
weighted sum over tasks of the task's loss (`pfd_tf.tasks.labels`); for the one
binary task of `data.label` (named `main`, weight 1) that is Eq. (6)'s log
loss, as before tasks existed.  The first task is the served one: its
logits are a network's own (`NetworkOutput.logits`, what the soft label,
the hint, the ensemble and the export read); each other task's come from
its head over the network's `final` (`pfd_tf.models.heads`), and its keys
carry its name (`<name>_<task>_logits`, `<name>_<task>_auc`, ...).

The gate on validation rows (`gate_on_validation`, `distill.gate_data:
validation`): `train_step` takes `((ids, labels), (gate_ids, gate_labels))`
(`pfd_tf.distill.gate_data`; the gate's loss: `pfd_tf.distill.step_loss`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config.schema import DistillConfig
from pfd_tf.config.terms_checks import expand_terms
from pfd_tf.distill import empty_batches, routing, step_loss
from pfd_tf.distill.metrics import metrics_for
from pfd_tf.distill.term_list import WeightedTerm, build_terms, check_terms, mixed_weight
from pfd_tf.names import DEFAULT_TASK, GROUP, PRESET_TEACHER, SERVED, student_attribute, teacher_attribute
from pfd_tf.tasks.binary import BinaryTask
from pfd_tf.tasks.labels import labels_by_task
from pfd_tf.tasks.task import Task


class Distiller(keras.Model):
    def __init__(
        self,
        student=None,
        teacher=None,
        lambda_: float = 0.5,
        swap_step: int = 0,
        temperature: float = 1.0,
        train_student: bool = True,
        visit_feature: str = "",
        visit_ids: int = 0,
        embedding_l2: float = 0.0,
        teachers: Mapping | None = None,
        ensemble: keras.layers.Layer | None = None,
        terms: Sequence[WeightedTerm] | None = None,
        students: Mapping | None = None,
        gate_on_validation: bool = False,
        tasks: Sequence[Task] = (),
        crossdistil=None,
        calibration_optimizer=None,
        **kwargs,
    ):
        """`student`: the one student, or `students`: name -> network, the first named `student` (not both).
        `teacher`: one teacher (named `teacher`), or `teachers`: name -> network (not both).
        `ensemble`: combines several teachers' logits (`pfd_tf.distill.ensemble`).
        `terms`: the students' distillation terms (`pfd_tf.distill.term_list`); not given, `lambda_`,
        `swap_step` and `temperature` are shorthand for them (`pfd_tf.config.expand_terms`: a soft label
        into each student).
        `gate_on_validation`: each training element carries a second batch, the gate's only rows.
        `tasks`: the labels learnt (`pfd_tf.tasks`); empty: the one binary task `data.label` stands for.
        `crossdistil`: CrossDistil's augmented heads and calibration on the served student
        (`pfd_tf.distill.crossdistil_part`), with `calibration_optimizer` for its P, Q; no teacher then."""
        super().__init__(**kwargs)
        if teacher is not None and teachers:
            raise ValueError("pass teacher or teachers, not both")
        if student is not None and students:
            raise ValueError("pass student or students, not both")
        teachers = dict(teachers or ({PRESET_TEACHER: teacher} if teacher is not None else {}))
        students = dict(students or ({SERVED: student} if student is not None else {}))
        if next(iter(students), None) != SERVED:
            raise ValueError(f"the first student is the served one and is named {SERVED!r}; got {list(students)}")
        if set(students) & set(teachers):
            raise ValueError(f"a student and a teacher share a name: {sorted(set(students) & set(teachers))}")
        if not train_student and not teachers:
            raise ValueError("train_student=False needs a teacher to train")
        if len(teachers) > 1 and ensemble is None:
            raise ValueError("several teachers need an ensemble to combine them")
        # The students first: the optimizer's slots are checkpointed by position in `trainable_variables`, and
        # an evaluation model (no teacher frozen) must find the student's where a run that froze its teacher
        # put them.
        self.student_names = tuple(students)
        for name, network in students.items():
            setattr(self, student_attribute(name), network)
        self.teacher_names = tuple(teachers)
        for name, network in teachers.items():
            setattr(self, teacher_attribute(name), network)
        if not teachers:
            self.teacher = None  # `teacher` is the preset's one teacher; `teachers` has every teacher by name
        self.ensemble = ensemble if len(teachers) > 1 else None
        self.gate_on_validation = bool(gate_on_validation)
        if self.gate_on_validation and (self.ensemble is None or not self.ensemble.trainable_variables
                                        or not train_student):
            raise ValueError("gate_on_validation needs a trainable gate (a gating ensemble of several teachers) "
                             "and a student to train")
        self.tasks = tuple(tasks) or (BinaryTask(DEFAULT_TASK, ""),)
        if [task.served for task in self.tasks] != [True] + [False] * (len(self.tasks) - 1):
            raise ValueError(f"the first task is the served one, and only it: {self.tasks}")
        self.train_student = bool(train_student)
        if crossdistil is not None and (teachers or calibration_optimizer is None):
            raise ValueError("crossdistil's teachers are the student's augmented tasks: no teacher network, and a "
                             "calibration_optimizer for P, Q")
        self.crossdistil, self.calibration_optimizer = crossdistil, calibration_optimizer
        self.embedding_l2 = float(embedding_l2)
        if terms is None:
            shorthand = DistillConfig(lambda_=lambda_, swap_step=swap_step, temperature=temperature)
            terms = build_terms(expand_terms(shorthand, self.teacher_names, self.student_names), self.teacher_names)
        self.terms = check_terms(tuple(terms) if teachers else (), students, teachers)
        for term in self.terms:  # a term with variables (the hint's W) at `model/<attribute>` in checkpoints
            if isinstance(term.loss, keras.layers.Layer):
                setattr(self, term.attribute, term.loss)
        if not train_student:
            # The students are frozen, but not what a teacher shares with them (tables, a behaviour encoder):
            # teachers pre-trained together on shared tables (Share&Sync) must move them.
            shared = {id(layer) for teacher in teachers.values() for layer in teacher.submodules}
            for network in students.values():
                network.trainable = False
                for layer in network.submodules:
                    if id(layer) in shared:
                        layer.trainable = True
        # How often the train step has seen each id of `visit_feature` (train.count_visits):
        # which rows a run trained on, in the checkpoint beside the weights.
        self.visit_feature = visit_feature
        # The first step (1-based) whose loss was NaN or infinite, 0 while none was: what
        # `pfd_tf.callbacks.StopOnNonFiniteLoss` names when it stops a diverged run.
        self.nonfinite_step = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="nonfinite_step")
        self.visits = None
        if visit_feature:
            self.visits = tf.Variable(tf.zeros([visit_ids], tf.int32), trainable=False, name="visits")
        # Rows and groups (labels[GROUP]) trained on, over all runs of the model_dir: grouped batches vary in size.
        self.trained_rows = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="trained_rows")
        self.trained_groups = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="trained_groups")
        self._metrics = metrics_for(self)

    @property
    def metrics(self):
        # Listed here so that fit/evaluate reset them at each epoch.
        return [metric for _, metric, _ in self._metrics]

    @property
    def teachers(self) -> dict:
        return {name: getattr(self, teacher_attribute(name)) for name in self.teacher_names}

    @property
    def students(self) -> dict:
        return {name: getattr(self, student_attribute(name)) for name in self.student_names}

    @property
    def teacher_trainable(self) -> bool:
        return any(t.trainable for t in self.teachers.values())

    def co_trained(self) -> list[str]:
        """Names of the teachers trained in this run (their L_T in the loss); the others are frozen."""
        return [name for name, teacher in self.teachers.items() if teacher.trainable]

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        """The served student's logits."""
        return self.student(ids, training=training)

    @property
    def hint_layers(self) -> list:
        """The terms with variables of their own (the hint's W, Eq. (9) of Zhu et al.): group `hint`."""
        return [term.loss for term in self.terms if isinstance(term.loss, keras.layers.Layer)]

    def optimizer_step(self) -> tf.Tensor:
        """The step number (`optimizer.iterations`, checkpointed: the warm-up position survives a restart)."""
        return self.optimizer.iterations if self.optimizer is not None else tf.constant(0, tf.int64)

    def current_lambda(self, student: str = SERVED) -> tf.Tensor:
        """lambda_i of Algorithm 1 for `student`: the weight its mixing terms take from its label loss at this
        step (0 before the swapping step, lambda from it on, for the shorthand)."""
        return mixed_weight(self.terms, student, self.optimizer_step())

    def shared_inputs(self) -> list:
        """Input layers (e.g. the behaviour-sequence encoder) that the student and a co-trained teacher both use.

        `compute_losses` runs each of them once per step (through the step's
        `FeatureBank`).  A frozen teacher runs in inference mode, so it shares
        the tables' rows but not the layers' outputs.
        """
        teacher = {id(layer) for name in self.co_trained() for layer in self.teachers[name].all_input_layers}
        return [layer for layer in self.student.all_input_layers if id(layer) in teacher]

    def variable_groups(self) -> dict[str, list]:
        """`pfd_tf.distill.routing.variable_groups` of this distiller."""
        return routing.variable_groups(self.students if self.train_student else {}, self.teachers,
                                       self.hint_layers, self.ensemble)

    def loss_groups(self) -> dict[str, frozenset]:
        """Loss key -> the variable groups it may move (`pfd_tf.distill.routing`); L2 may move any table."""
        groups = {f"loss_{name}": routing.teacher_loss_groups(name) for name in self.co_trained()}
        if not self.train_student:
            return groups
        for name in self.student_names:
            groups[f"loss_{name}"] = routing.student_loss_groups(name)
        for term in self.terms:
            groups[term.key] = term.loss.groups(term.student)
        if self.teacher_names and self.ensemble is not None and self.ensemble.trainable_variables:
            groups["loss_gate"] = frozenset({routing.GATE})
        return groups

    def compute_losses(self, ids, labels, training: bool, gate_batch=None) -> dict[str, tf.Tensor]:
        """Every loss term for one batch, plus the logits (keys: the module docstring), from one
        `FeatureBank` (`pfd_tf.distill.step_loss.compute_losses`).  `gate_batch`: `(ids, labels)` of the
        gate's own rows (`gate_on_validation`)."""
        return step_loss.compute_losses(self, ids, labels, training, gate_batch)

    def crossdistil_loss(self, students: Mapping, labels: Mapping, task_losses: Mapping, out: dict) -> tf.Tensor:
        """The loss with the served student's L^{Model} of CrossDistil (Algorithm 1, line 10): its tasks beyond
        the pair as they were, the pair's by Eq. (4) and (7); sets `out["loss_calibration"]` (Eq. (9))."""
        served, pair = students[SERVED], self.crossdistil.task_names
        # Each augmented task over its own task's tower (a backbone's `<task>/final`), or over the one `final`
        # that every task head reads.
        finals = {t: served.hidden.get(f"{t}/final", served.hidden["final"]) if t != self.tasks[0].name
                  else served.hidden["final"] for t in pair}
        model, _ = self.crossdistil.losses(finals, {t: served.by_task[t] for t in pair}, labels,
                                           self.optimizer_step(), SERVED, out)
        others = [loss for task, loss in task_losses[SERVED].items() if task not in pair]
        others += [out[f"loss_{name}"] for name in students if name != SERVED]
        return tf.add_n(others + [model])

    def labels_by_task(self, labels) -> dict[str, tf.Tensor]:
        """`labels` by task name (`pfd_tf.tasks.labels.labels_by_task`)."""
        return labels_by_task(self.tasks, labels)

    def train_step(self, data):
        gate_batch = None
        if self.gate_on_validation:  # ((ids, labels), (gate_ids, gate_labels)): pfd_tf.distill.gate_data
            data, gate_batch = data
        ids, labels = data
        if isinstance(labels, Mapping) and GROUP in labels:  # one of only empty groups is no step (empty_batches)
            return empty_batches.train_unless_empty(self, ids, labels, gate_batch)
        self.trained_rows.assign_add(tf.shape(tf.nest.flatten(labels)[0], out_type=tf.int64)[0])
        return self.train_on(ids, labels, gate_batch)

    def train_on(self, ids, labels, gate_batch):
        """One training step on `(ids, labels)`: the losses, their gradients, the updates, the metrics."""
        with tf.GradientTape(persistent=self.crossdistil is not None) as tape:
            out = self.compute_losses(ids, labels, training=True, gate_batch=gate_batch)
        variables = self.trainable_variables
        if self.crossdistil is not None:  # Algorithm 1 of CrossDistil: Theta by L^Model, Omega = {P, Q} by L^Cal
            variables, omega = self.crossdistil.groups(variables)
            self.calibration_optimizer.apply_gradients(zip(tape.gradient(out["loss_calibration"], omega), omega))
        gradients = tape.gradient(out["loss"], variables)
        tf.cond(tf.math.is_finite(out["loss"]), tf.no_op, self._note_nonfinite_step)
        # None: a variable no loss reads this step (e.g. an LR student's tables, which only its hint reads).
        self.optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
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
        labels = self.labels_by_task(labels)
        for key, metric, task in self._metrics:
            if task:
                metric.update_state(labels[task], out[key])
            else:
                metric.update_state(out[key])
        return {metric.name: metric.result() for metric in self.metrics}
