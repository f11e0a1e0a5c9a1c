"""Target attention: the candidate item weighs each of the user's behaviours (DIN-style).

Why a teacher has it and a two-tower student cannot.  An inner-product model
(Eq. 3 of the PFD paper) encodes the behaviour sequence without knowing the
candidate, so "how many of the user's recent behaviours look like *this*
item" reaches its score only through the inner product of two summaries.  A
DNN ranker crosses the candidate with every behaviour before pooling, as the
fine-grained rankers of a cascade do (Zhou et al., Deep Interest Network,
KDD 2018).  That costs one sequence pass per candidate, which coarse-grained
ranking cannot pay at serving time, but a PFD+MD teacher (Section 4, Figure 4)
can during training, and distil what it learns into the two-tower student.

Per behaviour j with embedding h_j (its item features and side features,
e.g. time since the behaviour) and the candidate's embedding c:

    k_j = W_k h_j,  q = W_q c,  a_j = MLP([k_j, q, k_j * q]),  out = sum_j a_j k_j

The weights a_j are not normalized over the sequence (as in DIN), so the
output keeps the *intensity* of interest, e.g. how many recent behaviours
were in the candidate's category, which a softmax would average away.
Padding gets weight zero, so a padded row gives the same output as the same
row without padding.

The behaviour and candidate embeddings come from the step's `FeatureBank`:
the behaviour encoder and the item-side embeddings read the same tables, and
a second lookup would double the lookup and gradient traffic to the
parameter servers.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.features import PAD_ID
from pfd_tf.models.feature_bank import FeatureBank


@keras.utils.register_keras_serializable(package="pfd_tf")
class TargetAttention(keras.layers.Layer):
    """ids -> `[B, units]`: the behaviours pooled with weights computed against the candidate.

    Args:
        tables: feature name -> embedding table (shared with other networks,
            like `FeatureEmbedding`'s).
        behaviour_features: the sequence features describing each behaviour
            (item features first: a position is valid where the first is not
            `PAD_ID`; side features such as time since the behaviour may follow).
        target_features: the candidate's features (e.g. item_id, category_id, shop_id).
        units: size of the keys, the query and the output.
        hidden: width of the hidden layer of the attention MLP.
    """

    def __init__(
        self,
        tables: Mapping[str, keras.layers.Embedding],
        behaviour_features: Sequence[str],
        target_features: Sequence[str],
        units: int = 32,
        hidden: int = 32,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.behaviour_features = tuple(behaviour_features)
        self.target_features = tuple(target_features)
        if not self.behaviour_features or not self.target_features:
            raise ValueError("TargetAttention needs behaviour features and target features")
        missing = [name for name in self.feature_names if name not in tables]
        if missing:
            raise ValueError(f"no embedding table for feature {missing[0]!r}")
        self.tables = {name: tables[name] for name in self.feature_names}
        self.units = int(units)
        self.output_dim = self.units
        self.key = keras.layers.Dense(self.units, name="key")
        self.query = keras.layers.Dense(self.units, name="query")
        self.attention_hidden = keras.layers.Dense(int(hidden), activation="relu", name="attention_hidden")
        self.attention_weight = keras.layers.Dense(1, name="attention_weight")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.behaviour_features + self.target_features

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None, bank: FeatureBank | None = None) -> tf.Tensor:
        """`bank`, when given, is this step's lookups (its ids are read, not `ids`)."""
        bank = FeatureBank.of(ids, bank)
        first = bank.ids[self.behaviour_features[0]]
        valid = tf.not_equal(first, tf.cast(PAD_ID, first.dtype))[..., tf.newaxis]  # [B, L, 1]
        behaviours = bank.lookups(self.behaviour_features, self.tables)
        # tf.where (not a multiply): padded positions get exactly zero gradient.
        keys = self.key(tf.where(valid, behaviours, tf.zeros_like(behaviours)))  # [B, L, units]
        query = self.query(bank.lookups(self.target_features, self.tables))[:, tf.newaxis, :]  # [B, 1, units]
        query = tf.broadcast_to(query, tf.shape(keys))
        weights = self.attention_weight(self.attention_hidden(tf.concat([keys, query, keys * query], axis=-1)))
        weights = tf.where(valid, weights, tf.zeros_like(weights))  # [B, L, 1]
        return tf.reduce_sum(weights * keys, axis=1)

    def get_config(self):
        raise NotImplementedError("TargetAttention shares tables built elsewhere; rebuild it from the pfd_tf config")
