"""The config as one frozen dataclass, `Config`, over its sections, and the views a run derives from it.

Each section is its own module (`data`, `features`, `model`, `distill`, `train`, `cluster`, and the lists
`teachers`/`students` in `zoo`, `tasks`, `distill.terms` in `terms`); this one gathers them, and re-exports their
names so `pfd_tf.config.schema` still gives every enum and dataclass.  Import it as `pfd_tf.config`, which adds
reading and checking (`pfd_tf.config.parse`, `pfd_tf.config.checks`) and writing (`pfd_tf.config.saving`).
"""
from __future__ import annotations

import dataclasses
import enum
import os
from typing import Any

from pfd_tf.names import DEFAULT_TASK, SERVED

from pfd_tf.config.cluster import ClusterConfig
from pfd_tf.config.data import DataConfig, DataFormat  # noqa: F401  (re-exported)
from pfd_tf.config.distill import DistillConfig, Mode
from pfd_tf.config.errors import ConfigError  # noqa: F401  (re-exported)
from pfd_tf.config.features import (  # noqa: F401  (re-exported)
    FEATURE_DEFAULTS, Derive, FeatureKind, FeatureSpec, NumericEncoding, NumericTransform, Role, Side)
from pfd_tf.config.model import (  # noqa: F401  (re-exported)
    Architecture, EmbeddingInit, InitFrom, ModelConfig, Normalization, Sharing)
from pfd_tf.config.presets import preset_teachers, preset_tower
from pfd_tf.config.tasks import TaskConfig, TaskKind  # noqa: F401  (re-exported)
from pfd_tf.config.terms import TermConfig, TermSchedule, term_dict  # noqa: F401  (re-exported)
from pfd_tf.config.train import EarlyStopping, Optimizer, TrainConfig  # noqa: F401  (re-exported)
from pfd_tf.config.zoo import (  # noqa: F401  (re-exported)
    Ensemble, FeatureView, GateData, NetworkConfig, StudentConfig, TeacherConfig, ZooModel)


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig
    features: tuple[FeatureSpec, ...]
    model: ModelConfig = ModelConfig()
    distill: DistillConfig = DistillConfig()
    train: TrainConfig = TrainConfig()
    cluster: ClusterConfig = ClusterConfig()
    # The teachers, each a network of the zoo; empty: the one teacher `distill.mode` describes
    # (`teacher_specs`).  Given: distill.mode is `teachers`.
    teachers: tuple[TeacherConfig, ...] = ()
    # The students, each a network of the zoo; the first is the served one, named `student`, the others by
    # their `name`.  `student:` in YAML and --set is shorthand for the first.
    students: tuple[StudentConfig, ...] = (StudentConfig(),)
    # The labels learnt, each a task (`pfd_tf.config.tasks`); empty: the one binary task of `data.label`.
    tasks: tuple[TaskConfig, ...] = ()
    base_dir: str = ""  # directory relative data paths are resolved against

    # --- derived views -------------------------------------------------
    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def student(self) -> NetworkConfig:
        """The served student's network (`students[0]`)."""
        return self.students[0]

    @property
    def student_names(self) -> tuple[str, ...]:
        """The students' names, the served one (`student`) first: the keys of their metrics and exports."""
        return (SERVED,) + tuple(s.name for s in self.students[1:])

    @property
    def regular_features(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if not f.privileged)

    @property
    def privileged_features(self) -> tuple[FeatureSpec, ...]:
        return tuple(f for f in self.features if f.privileged)

    @property
    def student_features(self) -> tuple[FeatureSpec, ...]:
        if self.model.student_features:
            return tuple(self.feature(n) for n in self.model.student_features)
        return self.regular_features

    @property
    def teacher_features(self) -> tuple[FeatureSpec, ...]:
        """Inputs of the teachers, by mode (Section 4 and Table 4): every feature some teacher reads, in order."""
        read = {f.name for t in self.teacher_specs for f in self.view_features(t.features)}
        return tuple(f for f in self.student_features + self.privileged_features if f.name in read)

    def network_normalization(self, network: NetworkConfig) -> Normalization:
        """The normalization of `network`'s MLP towers, if it is a teacher (`model.teacher_normalization`)."""
        teacher = isinstance(network, TeacherConfig) and network.model is not ZooModel.TWO_TOWER
        if teacher and self.model.teacher_normalization:
            return Normalization(self.model.teacher_normalization)
        return self.model.normalization

    @property
    def teacher_tower(self) -> tuple[int, ...]:
        """The preset teacher's tower (`pfd_tf.config.presets.preset_tower`)."""
        return preset_tower(self.distill, self.model)

    def view_features(self, view: "FeatureView") -> tuple[FeatureSpec, ...]:
        """The features a teacher with feature view `view` reads."""
        if view is FeatureView.PRIVILEGED:
            return self.privileged_features
        if view is FeatureView.REGULAR:
            return self.student_features
        return self.student_features + self.privileged_features

    @property
    def teacher_specs(self) -> tuple[TeacherConfig, ...]:
        """The teachers, `teachers:` as given or the one `distill.mode` stands for (its preset).

        The five PFD modes are shorthand (`pfd_tf.config.presets`): `baseline` has none; `lupi`, `md`, `pfd`
        and `pfd_md` one DNN (or two-tower) teacher named `teacher`.
        """
        if self.distill.mode is Mode.TEACHERS:
            return self.teachers
        return preset_teachers(self.distill, self.model)

    @property
    def task_specs(self) -> tuple[TaskConfig, ...]:
        """The tasks, `tasks:` as given or the one binary task `data.label` stands for, named
        `pfd_tf.names.DEFAULT_TASK` (empty when neither is given: `validate` refuses that)."""
        if self.tasks:
            return self.tasks
        return (TaskConfig(name=DEFAULT_TASK, label=self.data.label),) if self.data.label else ()

    def resolve_path(self, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(self.base_dir, path)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict; `from_dict(to_dict())` gives an equal config."""
        out = _plain(dataclasses.asdict(self))
        out.pop("base_dir")
        out["distill"]["lambda"] = out["distill"].pop("lambda_")
        _terms_or_shorthand(out["distill"], self.distill.terms)
        if out["distill"]["crossdistil"] is None:  # off: config.yaml as before the section existed
            del out["distill"]["crossdistil"]
        if not out["tasks"]:  # the shorthand data.label, written as it was given
            del out["tasks"]
        if not out["data"]["label"]:
            del out["data"]["label"]
        if not out["students"][0]["name"]:  # the served student's name is implied: config.yaml as before names
            del out["students"][0]["name"]
        for spec in out["features"]:
            defaults = FEATURE_DEFAULTS
            for key in [k for k, v in spec.items() if k in defaults and v == defaults[k]]:
                del spec[key]
        return out


def _terms_or_shorthand(distill: dict[str, Any], terms: tuple[TermConfig, ...]) -> None:
    """`distill` as written: without `terms` when the shorthand keys stand for them (so a config.yaml, and
    its fingerprint, are what they were before the list existed); with them, without the shorthand keys
    (at their defaults, which a config with `terms` may not set)."""
    if not terms:
        del distill["terms"]
        return
    for key in ("lambda", "temperature", "swap_step", "swap_fraction", "hint_weight", "hint_teacher",
                "hint_teacher_layer", "hint_student_layer"):
        del distill[key]
    distill["terms"] = [_plain(term_dict(term)) for term in terms]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
