"""What every network returns, and the views of its fields it reads.

A network (the DNN `Ranker`, the `TwoTowerRanker`, every model of the zoo)
is a body, its interaction layers, plus a head giving one logit per row.
`forward` returns `NetworkOutput`: the logits and the named hidden outputs a
hint (Eq. (9) of Zhu et al. 2020) can attach to; `call` returns the logits
alone, which is what gets served.  Every network names the input of its
logit layer `final`.  With several tasks (`pfd_tf.tasks`), `by_task` holds
each task's logits by name: the served task's are `logits` (the body's own),
each other task's come from its head over `final` (`pfd_tf.models.heads`).

`Fields` is a network's view of the step's `FeatureBank`: its features and
the tables it reads them from, handed out in the three forms the zoo needs
(the concatenated vector, the `[batch, fields, dim]` stack, and the sum of
first-order weights), each looked up once per step however many networks
read it.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureSpec
from pfd_tf.models.feature_bank import FeatureBank


@dataclasses.dataclass(frozen=True)
class NetworkOutput:
    """`logits`: `[batch]`, the served task's; `hidden`: name -> `[batch, width]` (always holding `final`);
    `by_task`: task name -> `[batch]` logits of every task, empty for a network of one task."""

    logits: tf.Tensor
    hidden: Mapping[str, tf.Tensor]
    by_task: Mapping[str, tf.Tensor] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Fields:
    """One network's features in one step's `bank`.

    `tables` holds each feature's embedding table; `linear_tables` (one-wide
    tables, for the first-order terms of LR, FM, Wide&Deep, DeepFM, xDeepFM)
    may be empty for a network without a first-order part.
    """

    bank: FeatureBank
    features: Sequence[FeatureSpec]
    tables: Mapping[str, keras.layers.Embedding]
    linear_tables: Mapping[str, keras.layers.Embedding] = dataclasses.field(default_factory=dict)

    def vector(self) -> tf.Tensor:
        """`[B, sum(dim)]`: the fields concatenated (a DNN's input)."""
        return self.bank.vector(self.features, self.tables)

    def stack(self) -> tf.Tensor:
        """`[B, fields, dim]`: one vector per field (FM, CIN, AutoInt, FiBiNet); equal dims required."""
        return self.bank.stack(self.features, self.tables)

    def first_order(self) -> tf.Tensor:
        """`[B]`: the sum over fields of each field's first-order weight, sum_i w_i x_i (no bias)."""
        if not self.linear_tables:
            raise ValueError("this network has no first-order tables")
        weights = [self.bank.field(spec, self.linear_tables[spec.name]) for spec in self.features]
        return tf.reduce_sum(tf.concat(weights, axis=-1), axis=-1)
