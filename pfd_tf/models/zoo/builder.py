"""Builds a network of the zoo from its registry entry (`pfd_tf.models.zoo.registry`) over embedding tables handed in.

`dnn` and `two_tower` are the `Ranker` and `TwoTowerRanker` that
`pfd_tf.models.build` makes.  Tables are not made here: `build_network`
takes the (possibly shared) embedding tables, and the first-order
(`linear_tables`, one wide, `build_linear_tables`) of the models in
`NEEDS_FIRST_ORDER`; the models in `NEEDS_STACK` cross fields pairwise and
need one embedding size for all their features.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras
from pfd_tf.config import FeatureSpec, ModelConfig, NetworkConfig, ZooModel
from pfd_tf.features import vocabulary_size
from pfd_tf.models.zoo import registry
from pfd_tf.models.zoo.network import ZooNetwork

NEEDS_STACK: frozenset[ZooModel] = frozenset(ZooModel(e.name) for e in registry.entries() if e.needs_stack)
NEEDS_FIRST_ORDER: frozenset[ZooModel] = frozenset(ZooModel(e.name) for e in registry.entries()
                                                   if e.needs_first_order)


def build_network(network: NetworkConfig, model: ModelConfig, features: Sequence[FeatureSpec],
                  tables: Mapping[str, keras.layers.Embedding], linear_tables: Mapping[str, keras.layers.Embedding],
                  tower: Sequence[int], name: str, tasks: Sequence[str] = ()) -> ZooNetwork:
    """The zoo network `network.model` over `features`, named `name`; its variables come at its first call.

    Args:
        network: the model and its sizes (`cross_layers`, `cin_layers`, ...).
        model: the normalization, LeakyReLU slope and dropout of the DNN part.
        features: what the network reads, in field order.
        tables: feature name -> embedding table, for every feature.
        linear_tables: feature name -> one-wide first-order table, for every
            feature of a model in `NEEDS_FIRST_ORDER` (ignored by the others).
        tower: the DNN part's hidden widths, resolved by the caller.
        name: the network's name (its variables' scope).
        tasks: the config's task names, the served one first: a multi-task backbone's towers (`backbone`).

    Raises:
        ValueError: for `dnn` and `two_tower` (not zoo models), no features,
            a missing or wrongly sized table, or unequal embedding sizes for
            a model in `NEEDS_STACK`.
    """
    kind = ZooModel(network.model)
    entry = registry.get(kind)
    make_body = entry.builder()
    features = tuple(features)
    if not features:
        raise ValueError(f"network {name!r} ({kind.value}) has no features")
    _check_tables(kind, name, features, tables, linear_tables)
    sizes = {"tasks": tuple(tasks)} if entry.multi_task else {}
    body = make_body(network, model, tuple(int(width) for width in tower), name=kind.value, **sizes)
    linear = linear_tables if kind in NEEDS_FIRST_ORDER else {}
    return ZooNetwork(features, tables, linear, body, name=name)


def _check_tables(kind: ZooModel, name: str, features, tables, linear_tables) -> None:
    missing = [spec.name for spec in features if spec.name not in tables]
    if missing:
        raise ValueError(f"network {name!r} ({kind.value}): no embedding table for feature {missing[0]!r}")
    if kind in NEEDS_FIRST_ORDER:
        missing = [spec.name for spec in features if spec.name not in linear_tables]
        if missing:
            raise ValueError(f"network {name!r} ({kind.value}) has a first-order part and needs a linear table "
                             f"for every feature; none for {missing[0]!r}")
        wide = [spec.name for spec in features if linear_tables[spec.name].output_dim != 1]
        if wide:
            raise ValueError(f"network {name!r} ({kind.value}): linear table of {wide[0]!r} has width "
                             f"{linear_tables[wide[0]].output_dim}, not 1")
    if kind in NEEDS_STACK:
        dims = {spec.name: tables[spec.name].output_dim for spec in features}
        if len(set(dims.values())) > 1:
            listed = ", ".join(f"{feature}={dim}" for feature, dim in dims.items())
            raise ValueError(f"network {name!r} ({kind.value}) crosses fields pairwise and needs equal embedding "
                             f"sizes, got {listed}")


def build_linear_tables(features: Sequence[FeatureSpec], prefix: str = "linear") -> dict[str, keras.layers.Embedding]:
    """One one-wide first-order table per feature, `{prefix}_{feature}`, zero-initialized (LR starts at 0)."""
    return {
        spec.name: keras.layers.Embedding(vocabulary_size(spec), 1, embeddings_initializer="zeros",
                                          name=f"{prefix}_{spec.name}")
        for spec in features
    }


__all__ = ["NEEDS_FIRST_ORDER", "NEEDS_STACK", "ZooNetwork", "build_linear_tables", "build_network"]
