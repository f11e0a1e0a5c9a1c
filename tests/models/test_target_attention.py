"""Target attention of DNN teachers: the candidate weighs each behaviour; padding is masked."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec
from pfd_tf.features import PAD_ID
from pfd_tf.models.embedding import build_tables
from pfd_tf.models.target_attention import TargetAttention

SPECS = [
    FeatureSpec(name="hist_item_id", kind=FeatureKind.SEQUENCE, dim=6, hash_buckets=30, max_len=5),
    FeatureSpec(name="hist_age_bucket", kind=FeatureKind.SEQUENCE, dim=2, hash_buckets=8, max_len=5),
    FeatureSpec(name="item_id", kind=FeatureKind.CATEGORICAL, dim=6, hash_buckets=30),
]
BASE = {"hist_item_id": [[5, 9, 3, 0, 0]], "hist_age_bucket": [[3, 1, 2, 0, 0]], "item_id": [7]}


def _layer():
    keras.utils.set_random_seed(0)
    tables = build_tables(SPECS)
    return TargetAttention(tables, ["hist_item_id", "hist_age_bucket"], ["item_id"], units=8, hidden=8), tables


def _ids(rows):
    return {name: tf.constant(value, tf.int64) for name, value in rows.items()}


def test_padded_row_equals_unpadded_row_and_padding_ids_change_nothing():
    layer, tables = _layer()
    base = layer(_ids(BASE)).numpy()
    assert base.shape == (1, 8)
    short = {k: (v if k == "item_id" else [v[0][:3]]) for k, v in BASE.items()}
    np.testing.assert_allclose(layer(_ids(short)).numpy(), base, atol=1e-6)
    # Side ids at padded positions, and the padding rows of the tables, are ignored.
    noisy = dict(BASE, hist_age_bucket=[[3, 1, 2, 6, 5]])
    np.testing.assert_allclose(layer(_ids(noisy)).numpy(), base, atol=1e-6)
    for table in tables.values():
        weights = table.embeddings.numpy()
        weights[PAD_ID] = 3.0
        table.embeddings.assign(weights)
    np.testing.assert_allclose(layer(_ids(BASE)).numpy(), base, atol=1e-6)


def test_all_padding_row_is_zero_and_padding_gets_no_gradient():
    layer, tables = _layer()
    ids = {"hist_item_id": [[5, 9, 0], [0, 0, 0]], "hist_age_bucket": [[1, 2, 0], [4, 4, 4]], "item_id": [7, 7]}
    with tf.GradientTape() as tape:
        out = layer(_ids(ids))
        loss = tf.reduce_sum(out)
    np.testing.assert_array_equal(out.numpy()[1], 0.0)
    grad = tape.gradient(loss, tables["hist_item_id"].embeddings)
    grad = tf.convert_to_tensor(grad).numpy()
    np.testing.assert_array_equal(grad[PAD_ID], 0.0)
    assert np.abs(grad[5]).max() > 0


def test_output_depends_on_the_candidate_and_is_not_normalized_over_the_sequence():
    layer, _ = _layer()
    base = layer(_ids(BASE)).numpy()
    other = layer(_ids(dict(BASE, item_id=[11]))).numpy()
    assert np.abs(other - base).max() > 1e-4
    # Weights are not a softmax: repeating the behaviours (more interest) changes the output.
    doubled = {"hist_item_id": [[5, 9, 3, 5, 9, 3]], "hist_age_bucket": [[3, 1, 2, 3, 1, 2]], "item_id": [7]}
    np.testing.assert_allclose(layer(_ids(doubled)).numpy(), 2 * base, rtol=1e-5, atol=1e-6)


def test_missing_table_is_an_error():
    tables = build_tables(SPECS[:1])
    with pytest.raises(ValueError, match="item_id"):
        TargetAttention(tables, ["hist_item_id"], ["item_id"])
