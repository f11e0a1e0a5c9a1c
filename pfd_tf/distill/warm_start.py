"""KD-DAGFM's fine-tune phase: networks that start from another run's checkpoint (`model.init_from`).

"Directed Acyclic Graph Factorization Machines for CTR Prediction via
Knowledge Distillation" (Tian et al., WSDM 2023) trains in three phases: the
teacher alone, the DAGFM student distilled from it, then the student
fine-tuned on the labels alone.  Here each phase is a run of the same
trainer, chained by checkpoints as Ind&Async is: phase 1 `distill.teacher_only`,
phase 2 a frozen teacher (`teachers[i].checkpoint`: phase 1's model_dir),
phase 3 `distill.mode: baseline` with

    model.init_from: {checkpoint: <phase 2's model_dir>, networks: [student], tables: true}

What is restored: every variable of the named networks (their layers,
batch-norm statistics) and, with `tables: true`, the embedding tables they
read (the first-order ones too); with `tables: false` the tables keep their
fresh init (they are restored with the network, then set back: their shapes
must match all the same).  A network is found in the other run under the same name
(`model/student`, `model/teacher_<name>`: `pfd_tf.names`).  What is not: the
other networks, and the optimizer: its slots and its step start afresh, for
the fine-tune is a new optimisation (its step counts from 0, the learning
rate warms up again, Adagrad's accumulators start at their initial value).

Only before step 0: a run that resumes restores its own checkpoint and never
this one (the trainer warm-starts only when `Plan.resume_from` is None), so
the source run may even be gone by then.

`check` runs before anything is written into the model_dir
(`pfd_tf.run_plan.prepare`): it builds the networks once, here and with no
strategy, and restores into them, so that no checkpoint there, a network not
in it, or a shape that differs (another embedding dim, another depth or
tower) is a ConfigError naming `model.init_from` and the path.  `apply` does
the same restore into the run's distiller, under the strategy's scope:
under ParameterServerStrategy the variables are restored where they were
created, as a pre-trained teacher is (`pfd_tf.distill.pretrained.restore_network`).
"""
from __future__ import annotations

import gc
import logging
import os
from typing import Mapping

from pfd_tf._keras import keras, tf
from pfd_tf.config import Config, ConfigError
from pfd_tf.distill.pretrained import checkpoint_keys, restore_network
from pfd_tf.models.build import build_networks
from pfd_tf.names import SERVED, teacher_attribute

KEY = "model.init_from"


def attribute(name: str) -> str:
    """Where network `name` (the student or a teacher) sits in a distiller, hence in its checkpoints."""
    return SERVED if name == SERVED else teacher_attribute(name)


def check(config: Config) -> None:
    """ConfigError naming the key and the path unless `config.model.init_from` can warm-start its networks.
    `config` must give the tables their final sizes (vocabularies resolved)."""
    if not config.model.init_from.checkpoint:
        return
    networks = build_networks(config)  # a throwaway, built eagerly outside any strategy
    restore(config, {**networks.students, **networks.teachers})


def apply(model, config: Config) -> list[str]:
    """Warm-starts the distiller `model`'s networks as `config.model.init_from` says (call it under the
    strategy's scope, before compiling); returns what was restored, for the run's log."""
    if not config.model.init_from.checkpoint:
        return []
    return restore(config, {**model.students, **model.teachers})


def restore(config: Config, networks: Mapping[str, keras.Model]) -> list[str]:
    """Restores `networks` named by `model.init_from` from its checkpoint; ConfigError naming the key and path."""
    init = config.model.init_from
    path = config.resolve_path(init.checkpoint)
    hint = "" if os.path.isabs(init.checkpoint) else " (a relative path is relative to the config file)"
    try:
        prefix, keys = checkpoint_keys(path)
    except ValueError as err:
        raise ConfigError(f"{KEY}.checkpoint: {err}{hint}") from None
    there = sorted({key.split("/")[1] for key in keys if key.startswith(("model/student", "model/teacher"))})
    restored = []
    for j, name in enumerate(init.networks):
        if attribute(name) not in there:
            raise ConfigError(f"{KEY}.networks[{j}]: {prefix}: no network {name!r} there (networks there, by "
                              f"checkpoint path: {', '.join('model/' + n for n in there) or 'none'})")
        network = networks[name]
        kept = [] if init.tables else [(v, v.read_value()) for v in table_variables(network)]
        reason = _restore_or_why(network, attribute(name), prefix)
        if reason:
            raise ConfigError(f"{KEY}: {prefix}: network {name!r} of this config does not match "
                              f"model/{attribute(name)} there ({reason}); warm-start only the same network, "
                              "with the same features, embedding dims and layers") from None
        for variable, value in kept:
            variable.assign(value)
        restored.append(f"{name} ({'with' if init.tables else 'without'} its tables)")
    return restored


def _restore_or_why(network: keras.Model, source: str, prefix: str) -> str | None:
    """`restore_network`, or why it failed.  A failed restore leaves checkpoint values unmatched, which
    TensorFlow lists as warnings when its objects go: silenced here, the error says what matters."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    reason = None
    try:
        try:
            restore_network(network, source, prefix)
        except (AssertionError, ValueError) as err:
            reason = " ".join(str(err).split())[:400]
        if reason:
            gc.collect()  # the failed restore's objects go now, while their warnings are silenced
    finally:
        logger.setLevel(level)
    return reason


def table_variables(network: keras.Model) -> list:
    """The variables of the embedding tables `network` reads (shared ones included), each once."""
    seen, out = set(), []
    for layer in network.submodules:
        if isinstance(layer, keras.layers.Embedding):
            for variable in layer.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    out.append(variable)
    return out
