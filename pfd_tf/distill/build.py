"""Builds the distiller of a config: its networks (`pfd_tf.models.build`) plus what trains them together.

`pfd_tf.models.build.build_networks` decides which networks there are and
who shares which table; this module adds the distillation around them: the
ensemble of several teachers (average or the gating network of Eq. (11) of
Zhu et al. 2020), the distillation terms of the config's `distill.terms`
(or of the shorthand keys they expand from: `pfd_tf.config.expand_terms`),
and the `Distiller` of Algorithm 1 of the PFD paper around them.

Call it under `strategy.scope()` to place variables on parameter servers.
"""
from __future__ import annotations

from pfd_tf._keras import tf
from pfd_tf.config import Config, Ensemble, GateData, expand_terms
from pfd_tf.config.crossdistil_checks import crossdistil_tasks
from pfd_tf.distill.crossdistil_part import CrossDistilPart, calibration_optimizer
from pfd_tf.distill.distiller import Distiller
from pfd_tf.distill.ensemble import AverageEnsemble, GatingEnsemble
from pfd_tf.distill.term_list import build_terms
from pfd_tf.features import vocabulary_size
from pfd_tf.models.build import build_networks, dummy_ids
from pfd_tf.tasks.build import tasks_for


def build_distiller(config: Config) -> Distiller:
    """Teachers + students wired as `config.model.sharing` says, weights created."""
    # The networks' weights after the distiller's own variables, in the order they always were created in.
    networks = build_networks(config, weights=False)
    teachers = networks.teachers
    distill = config.distill
    ensemble = None
    if len(teachers) > 1:
        ensemble = GatingEnsemble(len(teachers), name="gate") if distill.ensemble is Ensemble.GATING \
            else AverageEnsemble(name="average")
    terms = build_terms(expand_terms(distill, tuple(teachers), tuple(networks.students)), tuple(teachers))
    crossdistil = calibration = None
    if distill.crossdistil is not None:  # CrossDistil: the student's augmented tasks are its teachers
        crossdistil = CrossDistilPart(crossdistil_tasks(config), distill.crossdistil, config.train.seed,
                                      name="crossdistil")
        calibration = calibration_optimizer(distill.crossdistil)
    distiller = Distiller(
        students=networks.students,
        teachers=teachers,
        terms=terms,
        train_student=not distill.teacher_only,
        visit_feature=config.train.count_visits,
        embedding_l2=config.train.embedding_l2,
        visit_ids=vocabulary_size(config.feature(config.train.count_visits)) if config.train.count_visits else 0,
        ensemble=ensemble,
        gate_on_validation=distill.gate_data is GateData.VALIDATION,
        tasks=tasks_for(config),
        crossdistil=crossdistil,
        calibration_optimizer=calibration,
        name="distiller",
    )
    networks.build_weights(config)
    # W's shape (the augmented heads' too) is known once the hidden outputs are
    if (distiller.hint_layers or crossdistil is not None) and distiller.train_student:
        distiller.compute_losses(dummy_ids(config.features), {task.name: tf.zeros([2]) for task in distiller.tasks},
                                 training=False)
    return distiller
