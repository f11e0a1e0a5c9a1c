"""Builds the teachers' and the students' networks and their input components from a config.

This is where the sharing of input components (Section 4 and Tables 7-8 of
the PFD paper) is decided:

- `shared` (Share&Sync): one table per feature; a feature both networks read
  uses the same table object, and the behaviour-sequence encoder (Section
  5.1), when there is one, is one object used by both.
- `shared` with `student_private_features` (Share*&Sync): the student gets its
  own table for those features (the paper gives the student its own user id).
- `independent` (Ind&Sync, and Ind&Async with a pre-trained teacher): the
  teacher's tables (and encoder) are all its own, named `teacher_embedding_*`.
- a teacher of a `teachers:` list with a `checkpoint` (the pre-train scheme
  of Zhu et al. 2020) always has its own tables: it is restored and frozen.
  Co-trained teachers share tables with the student and with each other;
  the first-order (one-wide) tables of LR, FM, DeepFM, ... are shared alike.

The student is an MLP (`Ranker`) or a two-tower inner-product model
(`TwoTowerRanker`, Eq. (3)), per `model.architecture`.  The teacher mirrors
the student in `pfd` mode (a two-tower PFD teacher takes the privileged,
user-item interacted features on its user side, Section 5.2); in `lupi`,
`md` and `pfd_md` it is an MLP (for a two-tower student, PFD+MD's DNN teacher
of Figure 4).  An MLP teacher also crosses the candidate with the behaviour
sequence when `model.teacher_target_features` names the candidate's features
(`TargetAttention`); a student never does.  Any other network is a model of
the zoo (`pfd_tf.models.zoo`), per `teachers[i].model` and `student.model`.

Networks only: what trains them together (the distiller, its terms and
ensemble) is composed above, in `pfd_tf.distill.build`; nothing here imports
`pfd_tf.distill` (`tests/test_layering.py`).  Every function here only
constructs objects; call them under `strategy.scope()` to place variables on
parameter servers.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from pfd_tf._keras import tf
from pfd_tf.config import (Architecture, Config, FeatureKind, FeatureSpec, ModelConfig, NetworkConfig, Normalization,
                           Side, Sharing, TeacherConfig, ZooModel)
from pfd_tf.models.embedding import FeatureEmbedding, build_tables
from pfd_tf.models.heads import add_task_heads
from pfd_tf.models.ranker import Ranker
from pfd_tf.models.sequence import BehaviourSequenceEncoder, SequenceEmbedding
from pfd_tf.models.target_attention import TargetAttention
from pfd_tf.models.towers import MLPTower
from pfd_tf.models.two_tower import ProjectionTower, TwoTowerRanker
from pfd_tf.names import SERVED, student_attribute, teacher_attribute


def _behaviour_names(config: Config) -> tuple[str, ...]:
    return config.model.behaviour_items + config.model.behaviour_side


def _behaviour(config: Config, tables: Mapping, name: str) -> SequenceEmbedding | None:
    """The self-attention encoder of the behaviour sequence over `tables`, if the config has one."""
    if not config.model.behaviour_items:
        return None
    encoder = BehaviourSequenceEncoder(
        config.model.attention_heads, config.model.attention_head_dim, name=f"{name}_encoder"
    )
    return SequenceEmbedding(tables, config.model.behaviour_items, config.model.behaviour_side, encoder, name=name)


def _inputs(config: Config, features: Sequence[FeatureSpec], tables: Mapping, behaviour, name: str) -> list:
    """Input layers over `features`: the behaviour encoder for its features, a FeatureEmbedding for the rest."""
    in_behaviour = set(_behaviour_names(config))
    plain = [f for f in features if f.name not in in_behaviour]
    layers = [FeatureEmbedding(plain, tables, name=name)] if plain else []
    if behaviour is not None and any(f.name in in_behaviour for f in features):
        layers.append(behaviour)
    return layers


def _target_attention(config: Config, features, tables, name: str) -> list:
    """[TargetAttention] when the config asks for it and `features` hold the sequence and the candidate."""
    behaviour, target = _behaviour_names(config), config.model.teacher_target_features
    names = {f.name for f in features}
    if not target or not all(n in names for n in behaviour + target):
        return []
    return [TargetAttention(tables, behaviour, target, name=f"{name}_target_attention")]


def _mlp(config: Config, features, tables, behaviour, units, name: str, extra_inputs=(),
         normalization: Normalization | None = None) -> Ranker:
    """A DNN over `features`; its tower normalized by `normalization` (default: `model.normalization`)."""
    inputs = _inputs(config, features, tables, behaviour, f"{name}_inputs") + list(extra_inputs)
    model = config.model
    tower = MLPTower(units, model.leaky_relu_alpha, model.dropout, normalization or model.normalization,
                     model.batch_norm_momentum, name=f"{name}_tower")
    return Ranker(inputs, tower, name=name)


def _two_tower(config: Config, features, tables, behaviour, name: str) -> TwoTowerRanker:
    """Item-side regular features feed the item tower; everything else (user, context and
    privileged interacted features) the user tower."""
    item = [f for f in features if f.side is Side.ITEM and not f.privileged]
    user = [f for f in features if f not in item]
    model = config.model
    return TwoTowerRanker(
        _inputs(config, user, tables, behaviour, f"{name}_user_inputs"),
        _inputs(config, item, tables, None, f"{name}_item_inputs"),
        ProjectionTower(model.user_tower, model.leaky_relu_alpha, model.normalization, model.batch_norm_momentum,
                        name=f"{name}_user_tower"),
        ProjectionTower(model.item_tower, model.leaky_relu_alpha, model.normalization, model.batch_norm_momentum,
                        name=f"{name}_item_tower"),
        scale=model.inner_product_scale,
        name=name,
    )


def _network(config: Config, network: NetworkConfig, features, tables, linear, behaviour, tower, name: str,
             extra_inputs=()):
    """One network of the zoo over `features`: the DNN and two towers built here, the rest by `pfd_tf.models.zoo`.

    `linear(features)` gives the one-wide first-order tables of the models that have a first-order part.
    A teacher's MLP towers are normalized as `model.teacher_normalization` says (`Config.network_normalization`).
    """
    normalization = config.network_normalization(network)
    if network.model is ZooModel.DNN:
        return _mlp(config, features, tables, behaviour, tower, name, extra_inputs, normalization)
    if network.model is ZooModel.TWO_TOWER:
        return _two_tower(config, features, tables, behaviour, name)
    from pfd_tf.models import zoo  # the zoo's layers import tensorflow-recommenders: only when a config asks

    first_order = linear(features) if network.model in zoo.NEEDS_FIRST_ORDER else {}
    model = dataclasses.replace(config.model, normalization=normalization)
    tasks = [task.name for task in config.task_specs]
    return zoo.build_network(network, model, features, tables, first_order, tower, name, tasks)


class _TablePool:
    """Tables built on first request, one per feature: what networks that share their inputs read.

    `linear`: one-wide first-order tables (`pfd_tf.models.zoo.build_linear_tables`, zeros at first);
    otherwise embedding tables started as `model` says (`model.embedding_init`).
    """

    def __init__(self, prefix: str, linear: bool = False, tables: Mapping | None = None,
                 model: ModelConfig = ModelConfig()):
        self.prefix, self.linear, self.tables, self.model = prefix, linear, dict(tables or {}), model

    def __call__(self, features) -> dict:
        missing = [f for f in features if f.name not in self.tables]
        if missing and self.linear:
            from pfd_tf.models.zoo import build_linear_tables

            self.tables.update(build_linear_tables(missing, prefix=self.prefix))
        elif missing:
            self.tables.update(build_tables(missing, prefix=self.prefix, model=self.model))
        return {f.name: self.tables[f.name] for f in features}


def _student_tables(config: Config) -> tuple[dict, dict]:
    """(tables a teacher may share, the student's tables incl. its private ones)."""
    private = set(config.model.student_private_features)
    shareable = build_tables([f for f in config.student_features if f.name not in private], model=config.model)
    own = build_tables([config.feature(n) for n in sorted(private)], prefix="student_embedding", model=config.model)
    return shareable, {**shareable, **own}


def build_student(config: Config, tables: Mapping | None = None, behaviour=None, linear=None, name: str = SERVED):
    """Student `name` alone (the served one unless named): what training shares and what export rebuilds
    unsharded."""
    if tables is None:
        tables = _student_tables(config)[1]
        behaviour = _behaviour(config, tables, "student_behaviour")
    linear = linear or _TablePool("linear", linear=True)
    if name != SERVED:
        return build_other_student(config, config.student_names.index(name), tables, behaviour, linear)
    if config.model.architecture is Architecture.TWO_TOWER:
        student = _two_tower(config, config.student_features, tables, behaviour, SERVED)
    else:
        student = _network(config, config.student, config.student_features, tables, linear, behaviour,
                           config.student.tower or config.model.student_tower, SERVED)
    add_task_heads(student, [task.name for task in config.task_specs])
    return student


def build_other_student(config: Config, index: int, tables: Mapping, behaviour, linear):
    """Student `config.students[index]` (not the served one), named `student_<name>`, over the student
    features on `tables`: a network of the zoo, two towers included (a retrieval student of the cascade)."""
    network = config.students[index]
    return _network(config, network, config.student_features, tables, linear, behaviour,
                    network.tower or config.model.student_tower, student_attribute(network.name))


def build_teacher(config: Config, teacher: TeacherConfig, tables: Mapping, behaviour, linear):
    features = config.view_features(teacher.features)
    name = teacher_attribute(teacher.name)
    attention = _target_attention(config, features, tables, name) if teacher.model is ZooModel.DNN else []
    tower = teacher.tower or config.model.teacher_tower
    network = _network(config, teacher, features, tables, linear, behaviour, tower, name, attention)
    add_task_heads(network, [task.name for task in config.task_specs])
    return network


def _teacher(config: Config, teacher: TeacherConfig, pool: _TablePool, linear: _TablePool, shareable: Mapping,
             student_behaviour):
    """A teacher on the shared tables (`pool`), or on its own: frozen (pre-trained) or `sharing: independent`."""
    features = config.view_features(teacher.features)
    own = teacher.checkpoint or config.model.sharing is Sharing.INDEPENDENT
    if own:
        name = teacher_attribute(teacher.name)
        tables = build_tables(features, prefix=f"{name}_embedding", model=config.model)
        linear = _TablePool(f"{name}_linear", linear=True)
    else:
        tables = pool(features)
    shares_behaviour = not own and all(n in shareable for n in _behaviour_names(config))
    behaviour = student_behaviour if shares_behaviour else _behaviour(
        config, tables, f"{teacher_attribute(teacher.name)}_behaviour")
    return build_teacher(config, teacher, tables, behaviour, linear)


@dataclasses.dataclass(frozen=True)
class Networks:
    """What a config trains: `students` (name -> network, the served one first, named `SERVED`) and
    `teachers` (name -> network, in `config.teacher_specs` order), their tables shared as the config says."""

    students: dict
    teachers: dict

    def all(self) -> list:
        """Every network, students first: the order their weights are created in."""
        return [*self.students.values(), *self.teachers.values()]

    def build_weights(self, config: Config) -> None:
        """Creates every network's variables now (`build_weights`), students first."""
        for network in self.all():
            build_weights(network, config)


def build_networks(config: Config, weights: bool = True) -> Networks:
    """The students and teachers of `config`, wired as `config.model.sharing` says.

    `weights=False` leaves their variables to the caller (`Networks.build_weights`): the distiller
    (`pfd_tf.distill.build`) creates its own variables first, so that the variables' order of creation,
    hence their placement on parameter servers, stays what it was.
    """
    shareable, student_tables = _student_tables(config)
    student_behaviour = _behaviour(config, student_tables, "student_behaviour")
    pool = _TablePool("embedding", tables=shareable, model=config.model)
    linear = _TablePool("linear", linear=True)
    teachers = {t.name: _teacher(config, t, pool, linear, shareable, student_behaviour) for t in config.teacher_specs}
    students = {SERVED: build_student(config, student_tables, student_behaviour, linear)}
    for i, name in enumerate(config.student_names[1:], start=1):  # the cascade's other students, same tables
        students[name] = build_other_student(config, i, student_tables, student_behaviour, linear)
    networks = Networks(students=students, teachers=teachers)
    if weights:
        networks.build_weights(config)
    return networks


def dummy_ids(features: Sequence[FeatureSpec], batch: int = 2) -> dict[str, tf.Tensor]:
    """A batch of padding/zero ids (float zeros for a value feature) for `features`, to create weights eagerly."""
    ids = {}
    for spec in features:
        shape = [batch, spec.max_len] if spec.kind is FeatureKind.SEQUENCE else [batch]
        ids[spec.name] = tf.zeros(shape, tf.float32 if spec.as_value else tf.int64)
    return ids


def build_weights(ranker, config: Config) -> None:
    """Creates the ranker's variables now (inside the caller's strategy scope).

    Only the ranker's own features are fed, so an exported student never
    records a trace that mentions another feature.
    """
    ranker(dummy_ids([config.feature(n) for n in ranker.feature_names]), training=False)
