"""The user's behaviour sequence encoded by one layer of multi-head self-attention.

Section 5.1 of the PFD paper: the clicked/purchased history is modelled by
the self-attention of the Transformer [36] (queries = keys = values = the
behaviour embeddings), 4 heads of 32 dimensions, with the feed-forward
network, skip connections and layer normalization of the original, then
mean pooling over the sequence.  The one change: no position encodings.
Extra features describing the behaviour on each item (time since the click,
dwell time, behaviour type, ...) are embedded, projected and *added* in
their place; they encode the relative position and the importance of each
behaviour.

Padding (id `PAD_ID` in the first item feature) is masked everywhere: padded
inputs are zeroed before the projections, no position attends to a padded
key, and the pooling averages valid positions only, so a padded row gives
the same output as the same row without padding, and padded inputs receive
zero gradient.  A row with no valid position pools to zeros.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.features import PAD_ID
from pfd_tf.models.feature_bank import FeatureBank


@keras.utils.register_keras_serializable(package="pfd_tf")
class BehaviourSequenceEncoder(keras.layers.Layer):
    """`[B, L, d_item]` (+ `[B, L, d_side]`) behaviours and a `[B, L]` mask -> `[B, num_heads * head_dim]`.

    Args:
        num_heads: attention heads (4 in Section 5.1).
        head_dim: size of each head's query/key/value subspace (32 in Section 5.1).
        ff_dim: hidden width of the position-wise feed-forward network;
            `None` means twice the model width `num_heads * head_dim`.
        dropout: dropout rate on the attention weights and on both sub-layer
            outputs before their skip connection (training only).
    """

    def __init__(self, num_heads: int = 4, head_dim: int = 32, ff_dim: int | None = None, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.model_dim = self.num_heads * self.head_dim
        self.ff_dim = int(ff_dim) if ff_dim else 2 * self.model_dim
        self.dropout = float(dropout)
        # The output is pooled, so no sequence mask propagates past this layer.
        self.supports_masking = True

        self.item_projection = keras.layers.Dense(self.model_dim, name="item_projection")
        # No bias: it is added to the item projection, which has one.
        self.side_projection = keras.layers.Dense(self.model_dim, use_bias=False, name="side_projection")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, key_dim=self.head_dim, dropout=self.dropout, name="self_attention"
        )
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="attention_norm")
        self.ff_hidden = keras.layers.Dense(self.ff_dim, activation="relu", name="ff_hidden")
        self.ff_output = keras.layers.Dense(self.model_dim, name="ff_output")
        self.ff_dropout = keras.layers.Dropout(self.dropout, name="ff_dropout")
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ff_norm")

    def call(
        self,
        item_vectors: tf.Tensor,
        side_vectors: tf.Tensor | None = None,
        mask: tf.Tensor | None = None,
        training: bool | None = None,
    ) -> tf.Tensor:
        if mask is None:
            mask = tf.ones(tf.shape(item_vectors)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)
        valid = mask[..., tf.newaxis]  # [B, L, 1]

        # tf.where (not a multiply): padded inputs get exactly zero gradient even if they hold inf/NaN.
        x = self.item_projection(tf.where(valid, item_vectors, tf.zeros_like(item_vectors)))
        if side_vectors is not None:
            # In place of position encodings (Section 5.1).
            x = x + self.side_projection(tf.where(valid, side_vectors, tf.zeros_like(side_vectors)))

        # [B, L_query, L_key]: every query attends to the valid keys only.  The
        # outputs at padded queries are discarded by the pooling below.
        attention_mask = tf.logical_and(mask[:, tf.newaxis, :], tf.ones_like(mask)[:, :, tf.newaxis])
        attended = self.attention(x, x, attention_mask=attention_mask, training=training)
        x = self.attention_norm(x + self.attention_dropout(attended, training=training))
        fed = self.ff_output(self.ff_hidden(x))
        x = self.ff_norm(x + self.ff_dropout(fed, training=training))

        # Mean over valid positions; an all-padding row has count 0 and pools to zeros.
        x = tf.where(valid, x, tf.zeros_like(x))
        count = tf.reduce_sum(tf.cast(valid, x.dtype), axis=1)
        return tf.reduce_sum(x, axis=1) / tf.maximum(count, 1.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "head_dim": self.head_dim,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@keras.utils.register_keras_serializable(package="pfd_tf")
class SequenceEmbedding(keras.layers.Layer):
    """Looks the behaviour sequence up in `tables` and encodes it: ids -> `[B, encoder.model_dim]`.

    Per position, the embeddings of `item_features` (e.g. hist_item_id,
    hist_category_id) are concatenated into the behaviour's item vector and
    those of `side_features` (e.g. hist_age_bucket, hist_dwell_bucket,
    hist_type) into its side vector, which the encoder adds after projection
    (Section 5.1).  A position is valid where the first item feature is not
    `PAD_ID`; the other features' ids at padded positions are ignored.

    Like `FeatureEmbedding`, this layer only looks tables up: they are created
    elsewhere (`build_tables`) and may be shared by a teacher and a student.
    The lookups go through the step's `FeatureBank`, so target attention
    reading the same behaviour tables gets these rows, not a second lookup.
    """

    def __init__(
        self,
        tables: Mapping[str, keras.layers.Embedding],
        item_features: Sequence[str],
        side_features: Sequence[str] = (),
        encoder: BehaviourSequenceEncoder | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.item_features = tuple(item_features)
        self.side_features = tuple(side_features)
        if not self.item_features:
            raise ValueError("SequenceEmbedding needs at least one item feature (its padding defines the mask)")
        missing = [name for name in self.feature_names if name not in tables]
        if missing:
            raise ValueError(f"no embedding table for feature {missing[0]!r}")
        # A dict attribute is tracked by Keras: checkpoints reach each table by feature name.
        self.tables = {name: tables[name] for name in self.feature_names}
        self.encoder = encoder if encoder is not None else BehaviourSequenceEncoder(name="encoder")
        self.output_dim = self.encoder.model_dim

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.item_features + self.side_features

    def call(self, ids: Mapping[str, tf.Tensor], training: bool | None = None, bank: FeatureBank | None = None) -> tf.Tensor:
        """`bank`, when given, is this step's lookups (its ids are read, not `ids`)."""
        bank = FeatureBank.of(ids, bank)
        first = bank.ids[self.item_features[0]]
        mask = tf.not_equal(first, tf.cast(PAD_ID, first.dtype))
        items = bank.lookups(self.item_features, self.tables)
        sides = bank.lookups(self.side_features, self.tables) if self.side_features else None
        return self.encoder(items, sides, mask=mask, training=training)

    def get_config(self):
        raise NotImplementedError("SequenceEmbedding shares tables built elsewhere; rebuild it from the pfd_tf config")
