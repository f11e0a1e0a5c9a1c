"""Reading a config: YAML, `--set` overrides, and the typed building of the dataclasses.

Part of `pfd_tf.config` (which re-exports `from_dict` and `load`; the `--set` overrides `load` applies
are `pfd_tf.config.overrides`).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping, Sequence

import yaml

from pfd_tf.config.schema import (
    Architecture, ClusterConfig, Config, ConfigError, DataConfig, DataFormat, DistillConfig, EarlyStopping,
    EmbeddingInit, Ensemble, FeatureKind, FeatureSpec, FeatureView, GateData, InitFrom, Mode, ModelConfig,
    Normalization, NumericEncoding, NumericTransform, Optimizer, Role, Sharing, Side, StudentConfig, TeacherConfig,
    TrainConfig, ZooModel)
from pfd_tf.config.schema import Derive
from pfd_tf.config.tasks import TaskConfig, TaskKind
from pfd_tf.config.checks import validate
from pfd_tf.config.overrides import apply_overrides
from pfd_tf.config.schedule import DEFAULT_STEPS, refuse_zero_length
from pfd_tf.config.terms_checks import parse_terms
from pfd_tf.config.crossdistil_checks import parse_crossdistil


# --------------------------------------------------------------------------
# Building and validating
# --------------------------------------------------------------------------
def _build(cls, raw: Any, key: str, renames: Mapping[str, str] = {}):
    """Builds dataclass `cls` from mapping `raw`, coercing by field type."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in raw.items():
        attr = renames.get(name, name)
        if attr not in fields:
            spelled = {v: k for k, v in renames.items()}
            known = sorted(spelled.get(f, f) for f in fields)
            raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(known)})")
        kwargs[attr] = _coerce(fields[attr].type, value, f"{key}.{name}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"{key}.{missing[0]}: required key is missing")
    return cls(**kwargs)


_ENUMS = {
    "FeatureKind": FeatureKind,
    "Role": Role,
    "Side": Side,
    "Mode": Mode,
    "Sharing": Sharing,
    "Architecture": Architecture,
    "Normalization": Normalization,
    "EmbeddingInit": EmbeddingInit,
    "Optimizer": Optimizer,
    "DataFormat": DataFormat,
    "NumericTransform": NumericTransform,
    "NumericEncoding": NumericEncoding,
    "Derive": Derive,
    "ZooModel": ZooModel,
    "FeatureView": FeatureView,
    "Ensemble": Ensemble,
    "GateData": GateData,
    "EarlyStopping": EarlyStopping,
    "TaskKind": TaskKind,
}
_SECTIONS = {"InitFrom": InitFrom}  # a mapping nested in a section (model.init_from)


def _coerce(type_name: str, value: Any, key: str) -> Any:
    type_name = str(type_name)
    if type_name in _SECTIONS:
        return _build(_SECTIONS[type_name], value, key)
    if type_name in _ENUMS:
        enum_cls = _ENUMS[type_name]
        try:
            return enum_cls(value)
        except ValueError:
            choices = ", ".join(e.value for e in enum_cls)
            raise ConfigError(f"{key}: unknown value {value!r} (choose one of: {choices})") from None
    if type_name.startswith("tuple["):
        inner = type_name[len("tuple[") : -len(", ...]")]
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            if value is None:
                return ()
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value))
    if type_name == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    scalar = {"int": int, "float": float, "str": str}.get(type_name)
    if scalar is None:
        raise TypeError(f"unsupported config field type {type_name}")  # a bug, not bad input
    if scalar is int and not _is_integer(value):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if scalar is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if scalar is float and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if scalar is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return scalar(value)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value).is_integer()


def from_dict(raw: Mapping[str, Any], base_dir: str = "") -> Config:
    """Builds and validates a Config from a parsed YAML mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config: expected a mapping at the top level")
    known = {"data", "features", "model", "distill", "train", "cluster", "teachers", "students", "student", "tasks"}
    for name in raw:
        if name not in known:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(sorted(known))})")
    if "data" not in raw:
        raise ConfigError("data: required section is missing")
    raw_features = raw.get("features")
    if not isinstance(raw_features, Sequence) or not raw_features:
        raise ConfigError("features: expected a non-empty list of features")
    features = []
    for i, item in enumerate(raw_features):
        item = dict(item) if isinstance(item, Mapping) else item
        if isinstance(item, dict) and item.get("vocabulary") is not None:
            item["vocabulary"] = [str(v) for v in item["vocabulary"]]
        features.append(_build(FeatureSpec, item, f"features[{i}]"))
    teachers = _teachers(raw)
    raw_distill = raw.get("distill")
    terms = parse_terms(raw_distill, _build)
    crossdistil = parse_crossdistil(raw_distill, _build)
    if isinstance(raw_distill, Mapping):
        raw_distill = {key: value for key, value in raw_distill.items() if key not in ("terms", "crossdistil")}
    distill = dataclasses.replace(_build(DistillConfig, raw_distill, "distill", {"lambda": "lambda_"}), terms=terms,
                                  crossdistil=crossdistil)
    if teachers:
        distill = dataclasses.replace(distill, mode=Mode.TEACHERS)
    data = _build(DataConfig, raw["data"], "data")
    config = Config(
        data=data,
        features=tuple(features),
        model=_build(ModelConfig, raw.get("model"), "model"),
        distill=distill,
        train=_build(TrainConfig, raw.get("train"), "train"),
        cluster=_build(ClusterConfig, raw.get("cluster"), "cluster"),
        teachers=teachers,
        students=_students(raw),
        tasks=_tasks(raw, data.label),
        base_dir=base_dir,
    )
    if not config.train.steps and not config.train.epochs:
        refuse_zero_length(raw.get("train"))  # a given 0 is no default
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=DEFAULT_STEPS))
    validate(config)
    return config


def _teachers(raw: Mapping[str, Any]) -> tuple[TeacherConfig, ...]:
    """The `teachers:` list, typed; given, it replaces `distill.mode` (whose preset it would contradict)."""
    items = raw.get("teachers")
    if items is None or items == []:
        return ()
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise ConfigError(f"teachers: expected a list of teachers, got {items!r}")
    mode = (raw.get("distill") or {}).get("mode") if isinstance(raw.get("distill"), Mapping) else None
    if mode not in (None, Mode.TEACHERS.value):
        raise ConfigError(f"distill.mode: {mode!r} describes its own teacher; with a teachers: list leave it out")
    return tuple(_build(TeacherConfig, item, f"teachers[{i}]") for i, item in enumerate(items))


def _tasks(raw: Mapping[str, Any], data_label: str) -> tuple[TaskConfig, ...]:
    """The `tasks:` list, typed; empty when absent (then `data.label` is the one task).  `data.label` beside it
    must say the same: one task reading that column."""
    items = raw.get("tasks")
    if items is None or items == []:
        return ()
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise ConfigError(f"tasks: expected a list of tasks, got {items!r}")
    tasks = tuple(_build(TaskConfig, item, f"tasks[{i}]") for i, item in enumerate(items))
    if data_label and [task.label for task in tasks] != [data_label]:
        raise ConfigError(f"data.label: {data_label!r} is shorthand for one task reading that column, but tasks: "
                          f"lists {[task.label for task in tasks]}; give one of the two")
    return tasks


def _students(raw: Mapping[str, Any]) -> tuple[StudentConfig, ...]:
    """The `students:` list, typed, or its shorthand `student:` (the one, served, student)."""
    if "student" in raw and "students" in raw:
        raise ConfigError("student: shorthand for the first of students:; give one of the two")
    if "students" not in raw:
        return (_build(StudentConfig, raw.get("student"), "student"),)
    items = raw["students"]
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)) or not items:
        raise ConfigError(f"students: expected a non-empty list of students, got {items!r}")
    return tuple(_build(StudentConfig, item, f"students[{i}]") for i, item in enumerate(items))


# --------------------------------------------------------------------------
# Files and overrides
# --------------------------------------------------------------------------
def load(path: str, overrides: Sequence[str] = ()) -> Config:
    """Reads a YAML config, applies `a.b=c` overrides, validates, resolves paths."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    raw = apply_overrides(raw or {}, overrides)
    try:
        return from_dict(raw, base_dir=os.path.dirname(os.path.abspath(path)))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
