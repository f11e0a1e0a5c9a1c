"""Reading `distill.terms:`, expanding the shorthand keys into it, and its checks.

Part of `pfd_tf.config` (the schema is `pfd_tf.config.terms`).  The one
place the shorthand becomes a term list is `expand_terms`: without
`distill.terms`, `distill.lambda`, `temperature` and `swap_step` (or
`swap_fraction`) are one soft-label term into each student, mixing with its
label loss (Eq. (5) of the PFD paper), and `hint_weight` with
`hint_teacher`, `hint_teacher_layer` and `hint_student_layer` a hint term
(Eq. (9) of Zhu et al. 2020) on the same schedule.  A config gives either
the list or those keys, never both (ConfigError naming both).  The config
keeps what was written (`distill.terms` empty for a shorthand config), so
its config.yaml and fingerprint are what they were before the list existed.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

from pfd_tf.config.networks import hint_end_problem
from pfd_tf.config.schema import Config, ConfigError, DistillConfig, EarlyStopping
from pfd_tf.config.terms import (COMMON_KEYS, HINT, KINDS, SOFT_LABEL, TermConfig, TermSchedule)
from pfd_tf.names import SERVED

# The shorthand keys (as YAML spells them) -> DistillConfig's fields.
SHORTHAND = {"lambda": "lambda_", "temperature": "temperature", "swap_step": "swap_step",
             "swap_fraction": "swap_fraction", "hint_weight": "hint_weight", "hint_teacher": "hint_teacher",
             "hint_teacher_layer": "hint_teacher_layer", "hint_student_layer": "hint_student_layer"}


def parse_terms(raw_distill: Any, build: Callable) -> tuple[TermConfig, ...]:
    """`distill.terms` of the parsed YAML, typed (`build`: `pfd_tf.config.parse._build`); () when absent."""
    if not isinstance(raw_distill, Mapping) or raw_distill.get("terms") in (None, []):
        return ()
    _refuse_shorthand([key for key in SHORTHAND if key in raw_distill])
    items = raw_distill["terms"]
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise ConfigError(f"distill.terms: expected a list of terms, got {items!r}")
    return tuple(_parse_term(item, f"distill.terms[{i}]", build) for i, item in enumerate(items))


def _parse_term(item: Any, key: str, build: Callable) -> TermConfig:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {item!r}")
    kind = item.get("kind")
    if kind is None:
        raise ConfigError(f"{key}.kind: required key is missing (choose one of: {', '.join(KINDS)})")
    if kind not in KINDS:
        raise ConfigError(f"{key}.kind: unknown value {kind!r} (choose one of: {', '.join(KINDS)})")
    own = COMMON_KEYS + KINDS[kind].keys
    for name in item:
        if name not in own:
            other = [k for k, spec in KINDS.items() if name in spec.keys]
            why = f"a key of {' and '.join(other)} terms, not of {kind}" if other else "unknown key"
            raise ConfigError(f"{key}.{name}: {why} (a {kind} term's keys: {', '.join(own)})")
    fields = dict(item)
    schedule = fields.pop("schedule", None)
    fields.setdefault("mix", KINDS[kind].mixes)
    term = build(TermConfig, fields, key)
    return dataclasses.replace(term, schedule=build(TermSchedule, schedule, f"{key}.schedule"))


def _refuse_shorthand(given: Sequence[str]) -> None:
    if given:
        raise ConfigError(f"distill.terms and distill.{given[0]}: both set; distill.{given[0]} is shorthand for a "
                          "term of the list, so give its value in the term (weight, temperature, schedule, "
                          "teacher_layer, ...) and leave the shorthand out")


def expand_terms(distill: DistillConfig, teachers: Sequence[str], students: Sequence[str] = (SERVED,)
                 ) -> tuple[TermConfig, ...]:
    """The terms of the students' loss: `distill.terms` as given, or what the shorthand keys stand for.

    The shorthand: one soft label per student (weight lambda, temperature
    tau, mixing with the label loss: Eq. (5) of the PFD paper) and, with
    hint_weight, a hint into the served student, both switched on at the
    swapping step.  No teacher: no term (the baseline).
    """
    if distill.terms:
        return distill.terms
    if not teachers:
        return ()
    schedule = TermSchedule(distill.swap_step, distill.swap_fraction)
    terms = [TermConfig(SOFT_LABEL, distill.lambda_, student=name, mix=True, temperature=distill.temperature,
                        schedule=schedule) for name in students]
    if distill.hint_weight:
        terms.append(TermConfig(HINT, distill.hint_weight, teacher=distill.hint_teacher, mix=False,
                                teacher_layer=distill.hint_teacher_layer,
                                student_layer=distill.hint_student_layer, schedule=schedule))
    return tuple(terms)


def task_names(config: Config) -> tuple[str, ...]:
    """The tasks a term's `source_task` and `target_task` may name: the `tasks:` list's names (`main` for the
    one task `data.label` stands for)."""
    return tuple(task.name for task in config.task_specs)


def validate_terms(config: Config) -> None:
    """Checks `distill.terms`; each error names the term's key, e.g. `distill.terms[2].teacher`."""
    distill = config.distill
    if not distill.terms:
        return
    defaults = DistillConfig()
    _refuse_shorthand([key for key, attr in SHORTHAND.items() if getattr(distill, attr) != getattr(defaults, attr)])
    teachers = [t.name for t in config.teacher_specs]
    if not teachers:
        raise ConfigError("distill.terms: a distillation term needs a teacher; this config has none "
                          "(distill.mode: baseline)")
    students, tasks = config.student_names, task_names(config)
    seen: dict[tuple[str, str, str], int] = {}
    mixed: dict[tuple[str, str], float] = {}
    for i, term in enumerate(distill.terms):
        key = f"distill.terms[{i}]"
        _check_term(config, term, key, teachers, students, tasks)
        if (term.kind, term.student, term.target_task) in seen:
            into = f"student {term.student!r}" + (f" task {term.target_task!r}" if term.target_task else "")
            raise ConfigError(f"{key}: a second {term.kind} term into {into} (also "
                              f"distill.terms[{seen[term.kind, term.student, term.target_task]}]); one term of a "
                              "kind per student and target task, whose loss key (loss_distill, loss_hint, ...) "
                              "names it")
        seen[term.kind, term.student, term.target_task] = i
        if term.mix:
            mixed[term.student, term.target_task] = mixed.get((term.student, term.target_task), 0.0) + term.weight
    for (student, task), total in mixed.items():
        total += mixed.get((student, ""), 0.0) if task else 0.0  # an untargeted term mixes with every task
        if total > 1.0 + 1e-9:
            into = f"student {student!r}" + (f" task {task!r}" if task else "")
            raise ConfigError(f"distill.terms: the terms with mix: true into {into} weigh {total:g} "
                              "together; they take their weight from the label loss's 1 (Eq. (5) of the PFD "
                              "paper), so at most 1 (or set mix: false on one)")
    if config.train.early_stopping is EarlyStopping.DISTILLATION and (SOFT_LABEL, SERVED, "") not in seen:
        raise ConfigError("train.early_stopping: distillation scores the served student's soft-label loss; "
                          f"distill.terms has no {SOFT_LABEL} term into student {SERVED!r}")


def _check_term(config: Config, term: TermConfig, key: str, teachers, students, tasks) -> None:
    if term.weight < 0:
        raise ConfigError(f"{key}.weight: must be >= 0, got {term.weight:g}")
    if term.teacher and term.teacher not in teachers:
        raise ConfigError(f"{key}.teacher: no teacher {term.teacher!r} (teachers: {', '.join(teachers)})")
    if term.student not in students:
        raise ConfigError(f"{key}.student: no student {term.student!r} (students: {', '.join(students)})")
    for field in ("source_task", "target_task"):
        task = getattr(term, field)
        if task and task not in tasks:
            raise ConfigError(f"{key}.{field}: no task {task!r} (tasks: {', '.join(tasks)})")
    if (term.source_task or term.target_task) and term.kind != SOFT_LABEL:
        field = "source_task" if term.source_task else "target_task"
        raise ConfigError(f"{key}.{field}: a {term.kind} term reads and trains the served task; only "
                          f"{SOFT_LABEL} terms are routed by task")
    if term.source_task and not term.teacher and len(teachers) > 1:
        raise ConfigError(f"{key}.teacher: source_task {term.source_task!r} is read from one teacher; name it "
                          f"(teachers: {', '.join(teachers)})")
    if term.kind == SOFT_LABEL and term.temperature <= 0:
        raise ConfigError(f"{key}.temperature: must be positive, got {term.temperature:g}")
    if term.kind == HINT:
        problem = hint_end_problem(config, term.teacher, term.teacher_layer, term.student_layer, term.student)
        if problem:
            raise ConfigError(f"{key}.{problem[0]}: {problem[1]}")
    schedule = term.schedule
    if schedule.start_step < 0:
        raise ConfigError(f"{key}.schedule.start_step: must be >= 0, got {schedule.start_step}")
    if not 0.0 <= schedule.start_fraction < 1.0:
        raise ConfigError(f"{key}.schedule.start_fraction: a fraction of the run's steps, in [0, 1), "
                          f"got {schedule.start_fraction:g}")
    if schedule.start_step and schedule.start_fraction:
        raise ConfigError(f"{key}.schedule.start_fraction: set the start by start_step or by start_fraction, "
                          "not both")


def resolve_term_starts(distill: DistillConfig, steps: int) -> DistillConfig:
    """`distill` with each term's `schedule.start_fraction` turned into `start_step` of a run of `steps`."""
    def resolved(term: TermConfig) -> TermConfig:
        fraction = term.schedule.start_fraction
        if not fraction:
            return term
        return dataclasses.replace(term, schedule=TermSchedule(start_step=round(fraction * steps)))
    return dataclasses.replace(distill, terms=tuple(resolved(term) for term in distill.terms))


def check_term_starts(config: Config, length: str) -> None:
    """Each term switches on inside the run (`config.train.steps`, resolved), as the swapping step must."""
    for i, term in enumerate(config.distill.terms):
        if term.schedule.start_step >= config.train.steps:
            raise ConfigError(f"distill.terms[{i}].schedule.start_step: {term.schedule.start_step} is at or past "
                              f"the run's end ({length}: {config.train.steps} steps): the term would weigh 0 "
                              "for the whole run")
