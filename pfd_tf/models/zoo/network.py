"""`ZooNetwork`: a zoo model over tables handed in, usable as a teacher or a student.

The network holds its features, the embedding tables it reads them from
(`tables`, shared with other networks as `pfd_tf.models.build` decides),
the one-wide first-order tables of the models with a linear part
(`linear_tables`), and the model's body.  Both table dicts are tracked
attributes, so a checkpoint of the network reaches every table.  It is
rebuilt from the config, never deserialized (`get_config` raises).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureSpec
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.heads import with_heads
from pfd_tf.models.network import Fields, NetworkOutput
from pfd_tf.models.zoo.body import Body


class ZooNetwork(keras.Model):
    """logits = body(Fields(bank, features, tables, linear_tables)).

    Args:
        features: the features the network reads, in the order its fields take.
        tables: feature name -> embedding table (every feature of `features`).
        linear_tables: feature name -> one-wide first-order table; empty for a
            model without a first-order part.
        body: the model (`pfd_tf.models.zoo.lr.LRBody`, ...).
    """

    def __init__(self, features: Sequence[FeatureSpec], tables: Mapping[str, keras.layers.Embedding],
                 linear_tables: Mapping[str, keras.layers.Embedding], body: Body, **kwargs):
        super().__init__(**kwargs)
        self.features = tuple(features)
        # Tracked dicts: checkpoints reach each table by feature name.
        self._tables = {spec.name: tables[spec.name] for spec in self.features}
        self._linear_tables = {spec.name: linear_tables[spec.name] for spec in self.features} if linear_tables else {}
        self.body = body

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    @property
    def tables(self) -> dict[str, keras.layers.Embedding]:
        return dict(self._tables)

    @property
    def linear_tables(self) -> dict[str, keras.layers.Embedding]:
        return dict(self._linear_tables)

    @property
    def all_input_layers(self) -> list:
        """No input layers: the zoo reads its fields straight from the bank."""
        return []

    def fields(self, ids: Mapping[str, tf.Tensor], bank: FeatureBank | None = None) -> Fields:
        return Fields(FeatureBank.of(ids, bank), self.features, self._tables, self._linear_tables)

    def forward(self, ids: Mapping[str, tf.Tensor], training: bool | None = None,
                bank: FeatureBank | None = None) -> NetworkOutput:
        """Logits `[B]` and hidden outputs; `bank`: this step's lookups (a fresh one over `ids` if None)."""
        # `call` itself, not `Layer.__call__`: the body takes a `Fields` (the step's bank), which a SavedModel
        # cannot trace as a layer input; its sublayers, called with tensors, are traced as usual.
        return with_heads(self, self.body.call(self.fields(ids, bank), training=training))

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None,
             bank: FeatureBank | None = None) -> tf.Tensor:
        return self.forward(ids, training, bank).logits

    def get_config(self):
        raise NotImplementedError("a ZooNetwork is rebuilt from the pfd_tf config (pfd_tf.models.zoo.build_network)")
