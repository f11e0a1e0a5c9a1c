"""Checks of the config's networks (the `teachers:` and `students:` lists), the distillation terms between them,
and early stopping.

Part of `pfd_tf.config` (called by `checks.validate`); each error
names the key that must change, e.g. `teachers[1].name` or `distill.hint_teacher`.
"""
from __future__ import annotations

import re

from pfd_tf.config.schema import (Architecture, Config, ConfigError, EarlyStopping, Ensemble, FeatureView, GateData,
                                  Mode, NetworkConfig, ZooModel)

from pfd_tf.models.zoo import registry
from pfd_tf.names import SERVED

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_TWO_TOWER_EXPORTS = {"user_tower", "item_tower", "retrieval", "item_index"}  # pfd_tf.export_two_tower's
_RESERVED = {"student", "ensemble", "gate", "hint", "lambda", "loss", "distill", "l2"}


def validate_networks(config: Config) -> None:
    validate_early_stopping(config)
    distill = config.distill
    if distill.mode is Mode.TEACHERS and not config.teachers:
        raise ConfigError("distill.mode: teachers needs a non-empty teachers: list")
    _validate_network(config, config.student, "student")
    validate_students(config)
    if config.student.model is ZooModel.TWO_TOWER:
        raise ConfigError("student.model: a two-tower student is model.architecture: two_tower")
    if config.model.architecture is Architecture.TWO_TOWER and config.student.model is not ZooModel.DNN:
        raise ConfigError(f"student.model: {config.student.model.value} cannot be a two-tower student "
                          "(model.architecture: two_tower); leave it dnn")
    seen: dict[str, int] = {}
    for i, teacher in enumerate(config.teachers):
        key = f"teachers[{i}]"
        if not _NAME.match(teacher.name):
            raise ConfigError(f"{key}.name: {teacher.name!r} must be lower-case letters, digits and _, "
                              "starting with a letter")
        if teacher.name in _RESERVED:
            raise ConfigError(f"{key}.name: {teacher.name!r} is reserved (names metrics); choose another")
        if teacher.name in seen:
            raise ConfigError(f"{key}.name: duplicate teacher name {teacher.name!r} (also teachers[{seen[teacher.name]}])")
        seen[teacher.name] = i
        if teacher.model is ZooModel.TWO_TOWER:
            raise ConfigError(f"{key}.model: two_tower teachers come only from distill.mode: pfd with "
                              "model.architecture: two_tower")
        if teacher.features is FeatureView.PRIVILEGED and not config.privileged_features:
            raise ConfigError(f"{key}.features: privileged, but no feature has role: privileged")
        _validate_network(config, teacher, key, config.view_features(teacher.features))
    specs = config.teacher_specs
    if distill.teacher_only and specs and all(t.checkpoint for t in specs):
        raise ConfigError("distill.teacher_only: every teacher is pre-trained (checkpoint): nothing would train")
    if distill.hint_weight < 0:
        raise ConfigError("distill.hint_weight: must be >= 0")
    if distill.hint_weight and not specs:
        raise ConfigError("distill.hint_weight: a hint needs a teacher")
    if distill.hint_teacher and distill.hint_teacher not in {t.name for t in specs}:
        names = ", ".join(t.name for t in specs) or "none"
        raise ConfigError(f"distill.hint_teacher: no teacher {distill.hint_teacher!r} (teachers: {names})")
    if distill.hint_weight:
        _validate_hint_layers(config)
    validate_gate_data(config)
    _validate_init_from(config)


def validate_students(config: Config) -> None:
    """Each student after the first is named (a valid, unique name no teacher has); the first, served, one is
    `student` (its name empty or that)."""
    first = config.students[0].name
    if first not in ("", SERVED):
        raise ConfigError(f"students[0].name: the first student is the served one, named {SERVED!r}; got {first!r}")
    teachers = {t.name for t in config.teacher_specs}
    seen = {SERVED: 0}
    for i, student in enumerate(config.students[1:], start=1):
        key = f"students[{i}]"
        if not _NAME.match(student.name):
            raise ConfigError(f"{key}.name: {student.name!r} must be lower-case letters, digits and _, starting "
                              "with a letter (every student after the first, served, one is named)")
        if student.name in seen:
            raise ConfigError(f"{key}.name: duplicate student name {student.name!r} (also "
                              f"students[{seen[student.name]}])")
        if student.name in _RESERVED | teachers:
            raise ConfigError(f"{key}.name: {student.name!r} is reserved or a teacher's name (names metrics and "
                              "checkpoints); choose another")
        if config.model.architecture is Architecture.TWO_TOWER and student.name in _TWO_TOWER_EXPORTS:
            raise ConfigError(f"{key}.name: {student.name!r} is where the served two-tower student's "
                              f"{student.name} is exported (export/{student.name}/); choose another")
        seen[student.name] = i
        _validate_network(config, student, key)


def validate_gate_data(config: Config) -> None:
    """`distill.gate_data: validation` needs a gate that trains and validation files no network trains on."""
    distill = config.distill
    if distill.gate_data is GateData.TRAIN:
        return
    if distill.ensemble is not Ensemble.GATING or len(config.teacher_specs) < 2:
        raise ConfigError("distill.gate_data: validation trains the teacher gating network; it needs "
                          "distill.ensemble: gating and at least two teachers")
    if distill.teacher_only:
        raise ConfigError("distill.gate_data: validation: distill.teacher_only trains no student, hence no gate")
    if not config.data.validation_files:
        raise ConfigError("data.validation_files: distill.gate_data: validation trains the gate on them; list "
                          "files that are neither training nor held-out files (e.g. the last training day)")
    if config.train.merge_validation:
        raise ConfigError("train.merge_validation: with distill.gate_data: validation the gate must judge the "
                          "teachers on rows they did not train on; merging trains every network on them")


def hidden_names(model: ZooModel, tower: tuple[int, ...]) -> tuple[str, ...]:
    """The names a hint may attach to (Eq. (9) of Zhu et al. 2020) on network `model` whose DNN part is `tower`."""
    return registry.get(model).hidden_names(tower)


def _validate_hint_layers(config: Config) -> None:
    """Both ends of the shorthand's hint must be hidden outputs the two networks have, named before anything
    trains."""
    distill = config.distill
    problem = hint_end_problem(config, distill.hint_teacher, distill.hint_teacher_layer, distill.hint_student_layer)
    if problem:
        raise ConfigError(f"distill.hint_{problem[0]}: {problem[1]}")


def hint_end_problem(config: Config, teacher_name: str, teacher_layer: str, student_layer: str,
                     student_name: str = SERVED) -> tuple[str, str] | None:
    """(`teacher_layer` or `student_layer`, what is wrong) when a hint from teacher `teacher_name` (empty: the
    first) into student `student_name` joins a hidden output one of the two networks lacks; None when both
    ends exist."""
    specs = config.teacher_specs
    teacher = next((t for t in specs if t.name == teacher_name), specs[0])
    student = config.students[config.student_names.index(student_name)]
    served_two_tower = student_name == SERVED and config.model.architecture is Architecture.TWO_TOWER
    student_model = ZooModel.TWO_TOWER if served_two_tower else student.model
    who = "the student" if student_name == SERVED else f"student {student_name!r}"
    ends = [("teacher_layer", teacher_layer, f"teacher {teacher.name!r} ({teacher.model.value})",
             hidden_names(teacher.model, teacher.tower or config.model.teacher_tower)),
            ("student_layer", student_layer, f"{who} ({student_model.value})",
             hidden_names(student_model, student.tower or config.model.student_tower))]
    for key, layer, who, names in ends:
        if layer not in names:
            return key, f"{who} has no hidden output {layer!r} (it has: {', '.join(names)})"
    return None


def validate_early_stopping(config: Config) -> None:
    train, rule = config.train, config.train.early_stopping
    if train.early_stopping_patience <= 0:
        raise ConfigError("train.early_stopping_patience: must be positive")
    if rule is EarlyStopping.NONE:
        if train.merge_validation:
            raise ConfigError("train.merge_validation: only with train.early_stopping (what the validation files "
                              "are for)")
        return
    if not config.data.validation_files:
        raise ConfigError(f"data.validation_files: train.early_stopping: {rule.value} scores the run on them; "
                          "list the files (e.g. the last day before the held-out one)")
    if rule is EarlyStopping.DISTILLATION and (not config.teacher_specs or config.distill.teacher_only):
        raise ConfigError("train.early_stopping: distillation stops a student by its distillation loss; this run "
                          "trains no student from a teacher (use auc)")
    if train.merge_validation and rule is not EarlyStopping.DISTILLATION:
        raise ConfigError("train.merge_validation: with early_stopping: auc the run would stop by the AUC of rows it "
                          "trained on; merge only with early_stopping: distillation (Section 3.4.2)")


def _validate_network(config: Config, network: NetworkConfig, key: str, features=None) -> None:
    features = config.student_features if features is None else features
    if any(u <= 0 for u in network.tower):
        raise ConfigError(f"{key}.tower: layer sizes must be positive")
    model = network.model
    entry = registry.get(model)
    for param in entry.params:  # the checks the model's registry entry declares, in order
        for check in param.checks:
            problem = check(getattr(network, param.key))
            if problem:
                raise ConfigError(f"{key}.{param.key}: {problem}")
    if entry.needs_stack:
        dims = {f.dim for f in features}
        if len(dims) > 1:
            first = features[0]
            other = next(f for f in features if f.dim != first.dim)
            index = [f.name for f in config.features].index(other.name)
            raise ConfigError(f"features[{index}].dim: {model.value} ({key}) crosses fields pairwise, so its "
                              f"features need one embedding size; {other.name!r} has {other.dim}, "
                              f"{first.name!r} {first.dim}")


def _validate_init_from(config: Config) -> None:
    """`model.init_from`: networks of this config, none of them a frozen pre-trained teacher (whose
    `checkpoint` already says where it comes from).  Whether the checkpoint holds them is checked when a
    run starts (`pfd_tf.distill.warm_start.check`)."""
    init = config.model.init_from
    if not init.checkpoint:
        return
    if not init.networks:
        raise ConfigError("model.init_from.networks: name at least one network to warm-start (e.g. [student])")
    teachers = {t.name: t for t in config.teacher_specs}
    known = ["student", *teachers]
    for j, name in enumerate(init.networks):
        key = f"model.init_from.networks[{j}]"
        if name not in known:
            raise ConfigError(f"{key}: no network {name!r} in this config (networks: {', '.join(known)})")
        if name in init.networks[:j]:
            raise ConfigError(f"{key}: {name!r} is named twice")
        if name in teachers and teachers[name].checkpoint:
            raise ConfigError(f"{key}: teacher {name!r} is pre-trained and frozen from its own checkpoint; "
                              "warm-start only networks this run trains")
