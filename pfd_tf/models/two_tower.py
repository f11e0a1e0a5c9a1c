"""The inner-product model of coarse-grained ranking: logit = scale * <Phi_u(X_u), Phi_i(X_i)>.

Eq. (3) of the PFD paper.  The user side and the item side never meet before
the inner product, so the item vectors of all candidates can be computed
offline (`TwoTowerRanker.item_vectors`) and a request costs one forward pass
of the user side (`TwoTowerRanker.user_vectors`) plus one inner product per
candidate.  Section 5.2 gives both mappings as
Input -> 512 -> Act. -> 256 -> Act. -> 128 -> l2-normalize, and multiplies the
inner product by 5 "in compensation for the shrinkage of value after
normalization".  In PFD the privileged features go to the user side of the
teacher (the student's user side simply lacks them).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import Normalization
from pfd_tf.models.towers import hidden_layers
from pfd_tf.models.embedding import concat_inputs, input_feature_names, input_tables
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.heads import with_heads
from pfd_tf.models.network import NetworkOutput


@keras.utils.register_keras_serializable(package="pfd_tf")
class ProjectionTower(keras.layers.Layer):
    """The mapping Phi_W of Eq. (3): `[B, d_in] -> [B, units[-1]]`, unit-norm rows.

    Each hidden width is Dense -> normalization -> LeakyReLU (as in `MLPTower`,
    Section 5.1; `model.normalization`); the last width is a linear Dense, then l2-normalization
    (Section 5.2: Input->512->Act.->256->Act.->128->l2-normalize).
    """

    def __init__(self, units: Sequence[int] = (512, 256, 128), leaky_relu_alpha: float = 0.01,
                 normalization: Normalization | str = Normalization.BATCH, batch_norm_momentum: float = 0.99,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        if not self.units:
            raise ValueError("ProjectionTower needs at least one width (the output size)")
        self.leaky_relu_alpha = leaky_relu_alpha
        self.normalization = Normalization(normalization)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.hidden = hidden_layers(self.units[:-1], self.normalization, self.batch_norm_momentum, leaky_relu_alpha)
        self.projection = keras.layers.Dense(self.units[-1], name="projection")

    @property
    def output_dim(self) -> int:
        return self.units[-1]

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = inputs
        for layer in self.hidden:
            x = layer(x, training=training)
        return tf.math.l2_normalize(self.projection(x), axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": list(self.units), "leaky_relu_alpha": self.leaky_relu_alpha,
                "normalization": self.normalization.value, "batch_norm_momentum": self.batch_norm_momentum}


def _as_list(layers) -> list:
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


class TwoTowerRanker(keras.Model):
    """logit = scale * <user_tower(user_inputs(ids)), item_tower(item_inputs(ids))>, Eq. (3).

    Args:
        user_inputs: a layer, or a list of layers, mapping the ids dict to
            `[B, d]` (e.g. a `FeatureEmbedding` and a `SequenceEmbedding`);
            their outputs are concatenated.  It must read user-side (and
            context) features only: that is what makes Eq. (3) cheap to serve.
        item_inputs: the same for the item side.
        user_tower, item_tower: the mappings Phi_W^u and Phi_W^i
            (`ProjectionTower`s, Section 5.2).
        scale: multiplies the inner product of the unit vectors (5 in Section 5.2).

    `bank` (in `call`, `user_vectors`, `item_vectors`) is the step's
    `FeatureBank`, shared with the other networks; None makes a fresh one.
    """

    def __init__(self, user_inputs, item_inputs, user_tower: ProjectionTower, item_tower: ProjectionTower, scale: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        # Lists of layers are tracked by Keras, so their tables are in the checkpoint.
        self.user_inputs = _as_list(user_inputs)
        self.item_inputs = _as_list(item_inputs)
        if not self.user_inputs or not self.item_inputs:
            raise ValueError("TwoTowerRanker needs at least one user-side and one item-side input layer")
        self.user_tower = user_tower
        self.item_tower = item_tower
        self.scale = float(scale)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return input_feature_names(self.user_inputs + self.item_inputs)

    @property
    def tables(self) -> dict:
        return input_tables(self.user_inputs + self.item_inputs)

    @property
    def all_input_layers(self) -> list:
        return self.user_inputs + self.item_inputs

    def user_vectors(self, ids: Mapping[str, tf.Tensor], training: bool | None = False,
                     bank: FeatureBank | None = None) -> tf.Tensor:
        """Phi_W^u(X^u): `[B, d]` unit vectors, computed online per request."""
        return self.user_tower(concat_inputs(self.user_inputs, ids, training, bank), training=training)

    def item_vectors(self, ids: Mapping[str, tf.Tensor], training: bool | None = False,
                     bank: FeatureBank | None = None) -> tf.Tensor:
        """Phi_W^i(X^i): `[B, d]` unit vectors, computable offline for every candidate."""
        return self.item_tower(concat_inputs(self.item_inputs, ids, training, bank), training=training)

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None, bank: FeatureBank | None = None) -> tf.Tensor:
        return self.forward(ids, training, bank).logits

    def forward(self, ids: Mapping[str, tf.Tensor], training: bool | None = None,
                bank: FeatureBank | None = None) -> NetworkOutput:
        """Logits and hidden outputs: `user` and `item` (the unit vectors), `final` (their element-wise product,
        whose sum times `scale` is the logit)."""
        bank = FeatureBank.of(ids, bank)
        users = self.user_vectors(ids, training=training, bank=bank)
        items = self.item_vectors(ids, training=training, bank=bank)
        final = users * items
        return with_heads(self, NetworkOutput(self.scale * tf.reduce_sum(final, axis=-1),
                                              {"user": users, "item": items, "final": final}))

    def get_config(self):
        raise NotImplementedError("a TwoTowerRanker is rebuilt from the pfd_tf config")
