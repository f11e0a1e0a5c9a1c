"""One lookup per table per step: the rows of one batch, handed to every network that reads them.

With Share&Sync (Section 4 of the PFD paper) the teacher and the student read
the same embedding tables, and a DNN teacher's target attention reads the
behaviour tables its behaviour encoder already read.  If every layer looked
its tables up itself, each shared table would be gathered two or three times
per step, and under ParameterServerStrategy each gather is a lookup RPC to
the parameter server and each use a separate gradient push back.  A
`FeatureBank` is built from one batch's ids; the first layer asking for a
table's rows for a feature looks them up, every later one gets the same
tensor, so the gradients of all readers meet in one gather.

The bank hands a network its fields in the forms the models need:

- `embedding`: a table's raw rows for a feature's ids (`[B, dim]`, or
  `[B, L, dim]` for a sequence; what the behaviour encoder and target
  attention read per position);
- `field` / `vector`: one `[B, dim]` vector per field, a sequence mean-pooled
  over its non-padding positions, and their concatenation (MLP inputs);
- `stack`: the per-field vectors as `[B, fields, dim]` (the input of FM, CIN,
  AutoInt and the like);
- `output`: the output of a whole input layer (e.g. the behaviour encoder,
  "known to be costly", Section 4), computed once when several networks
  share the layer.

Rows are memoized by (feature name, table): with Share*&Sync the student
reads `user_id` from its private table and the teacher from the shared one,
two tables each looked up once.  A bank lives for one step (one batch); build
a new one per batch.  Inside `tf.function` the memo works at trace time, so
the traced step holds one gather per table.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec
from pfd_tf.features import PAD_ID


def _mode_key(training):
    """A hashable key for a `training` argument (a Python bool, None, or a tensor)."""
    return training if training is None or isinstance(training, (bool, int)) else id(training)


class FeatureBank:
    """The embedding rows and shared layer outputs of one batch, each computed once.

    Args:
        ids: feature name -> encoded ids of one batch (`[B]`, or `[B, L]` for
            a sequence; a float32 `[B]` value for a numeric feature with
            `encoding: value`), as `pfd_tf.features.FeatureEncoder` yields them.
    """

    def __init__(self, ids: Mapping[str, tf.Tensor]):
        self.ids = ids
        # Values keep the table (or layer) alive with its output, so an id() key is never reused.
        self._rows: dict[tuple, tuple] = {}
        self._fields: dict[tuple, tuple] = {}
        self._outputs: dict[tuple, tuple] = {}

    @classmethod
    def of(cls, ids: Mapping[str, tf.Tensor], bank: "FeatureBank | None" = None) -> "FeatureBank":
        """`bank`, or a fresh bank over `ids` for a caller (export, a unit test) that passes none."""
        return bank if bank is not None else cls(ids)

    def embedding(self, name: str, table: keras.layers.Embedding) -> tf.Tensor:
        """`table`'s rows for feature `name`'s ids, looked up on the first request only.

        Float "ids" are a numeric feature fed as its normalized value
        (`encoding: value`): its table has one row, and its embedding is that
        row times the value (`[B, dim]`), as FuxiCTR and AutoInt embed numeric
        fields.  The row itself is what counts as read (`trainable_rows`).
        """
        key = (name, id(table))
        ids = self.ids[name]
        if key not in self._rows:
            self._rows[key] = (table, table(tf.zeros_like(ids, tf.int64) if ids.dtype.is_floating else ids))
        rows = self._rows[key][1]
        return rows * ids[..., tf.newaxis] if ids.dtype.is_floating else rows

    def trainable_rows(self) -> list[tf.Tensor]:
        """Every row tensor looked up so far from a trainable table (what `train.embedding_l2` penalizes)."""
        return [rows for table, rows in self._rows.values() if table.trainable]

    def lookups(self, names: Sequence[str], tables: Mapping[str, keras.layers.Embedding]) -> tf.Tensor:
        """The rows of `names` concatenated on the last axis (per position, for sequences)."""
        return tf.concat([self.embedding(name, tables[name]) for name in names], axis=-1)

    def field(self, spec: FeatureSpec, table: keras.layers.Embedding) -> tf.Tensor:
        """`[B, dim]`: the feature's embedding, a sequence mean-pooled over its non-padding positions.

        An all-padding sequence pools to zeros.
        """
        key = (spec.name, id(table))
        if key not in self._fields:
            vectors = self.embedding(spec.name, table)
            if spec.kind is FeatureKind.SEQUENCE:
                mask = tf.cast(tf.not_equal(self.ids[spec.name], PAD_ID), vectors.dtype)[..., None]
                count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
                vectors = tf.reduce_sum(vectors * mask, axis=1) / count
            self._fields[key] = (table, vectors)
        return self._fields[key][1]

    def vector(self, features: Sequence[FeatureSpec], tables: Mapping[str, keras.layers.Embedding]) -> tf.Tensor:
        """`[B, sum(dim)]`: the fields of `features` concatenated, in their order."""
        return tf.concat([self.field(spec, tables[spec.name]) for spec in features], axis=-1)

    def stack(self, features: Sequence[FeatureSpec], tables: Mapping[str, keras.layers.Embedding]) -> tf.Tensor:
        """`[B, fields, dim]`: one pooled vector per field, for models that cross fields pairwise.

        The fields must share one embedding size (FM, CIN and AutoInt take
        inner or element-wise products between fields).
        """
        if not features:
            raise ValueError("stack needs at least one feature")
        dims = {spec.name: tables[spec.name].output_dim for spec in features}
        if len(set(dims.values())) > 1:
            listed = ", ".join(f"{name}={dim}" for name, dim in dims.items())
            raise ValueError(f"stack needs equal embedding sizes, got {listed}")
        return tf.stack([self.field(spec, tables[spec.name]) for spec in features], axis=1)

    def output(self, layer: keras.layers.Layer, training=None) -> tf.Tensor:
        """`layer(ids, training, bank=self)`, computed once per training mode.

        An input layer shared by the teacher and the student (the behaviour
        encoder under Share&Sync) then runs once per step for both.
        """
        key = (id(layer), _mode_key(training))
        if key not in self._outputs:
            self._outputs[key] = (layer, layer(self.ids, training=training, bank=self))
        return self._outputs[key][1]
