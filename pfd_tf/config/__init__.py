"""Typed, frozen experiment configuration, loaded from YAML and validated once.

A config has six sections: `data` (files and label), `features` (the schema:
which features exist and which are privileged), `model` (towers and how the
teacher and student share input embeddings), `distill` (Eq. (5) and
Algorithm 1 of the PFD paper: mode, lambda, swapping step, temperature;
ensembles and hints; or the list of terms they stand for, `distill.terms`),
`train` (optimizer, batch size, steps) and `cluster`
(sharding over parameter servers); and two optional ones, `teachers` (a
list of zoo networks, each over a feature view, co-trained or pre-trained)
`student` (the student's zoo network) and `tasks` (the labels learnt,
`pfd_tf.config.tasks`; `data.label` is its one-task shorthand).  Every error names the offending key,
e.g. `features[3].kind` or `distill.lambda`, so a typo never passes silently.

The one module to import; it gathers four: `schema` (the enums and
dataclasses, each section in its own module), `saving` (`save`), `parse` (YAML, `--set` overrides, typed
building: `load`, `from_dict`) and `checks` (cross-field checks, section by
section); and what a run resolves from its data: `schedule.resolve_length`,
`feature_stats.with_feature_stats`.
"""
from pfd_tf.config.schema import (  # noqa: F401
    Architecture, ClusterConfig, Config, ConfigError, DataConfig, DataFormat, DistillConfig, EarlyStopping,
    EmbeddingInit, Ensemble, FeatureKind, FeatureSpec, FeatureView, GateData, InitFrom, Mode, ModelConfig,
    NetworkConfig, Normalization, NumericEncoding, NumericTransform, Optimizer, Role, Sharing, Side, StudentConfig,
    TaskConfig, TaskKind, TeacherConfig, TermConfig, TermSchedule, TrainConfig, ZooModel)
from pfd_tf.config.saving import save, saved_dict  # noqa: F401
from pfd_tf.config.checks import validate  # noqa: F401
from pfd_tf.config.feature_stats import features_needing_stats, with_feature_stats  # noqa: F401
from pfd_tf.config.schedule import DEFAULT_STEPS, check_schedule, resolve_length  # noqa: F401
from pfd_tf.config.terms_checks import expand_terms  # noqa: F401
from pfd_tf.config.overrides import PARTNERS, apply_overrides  # noqa: F401
from pfd_tf.config.parse import from_dict, load  # noqa: F401
