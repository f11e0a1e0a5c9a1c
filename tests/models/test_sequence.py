"""Section 5.1: one layer of self-attention over the behaviour sequence, padding masked everywhere."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec
from pfd_tf.features import PAD_ID
from pfd_tf.models.embedding import build_tables
from pfd_tf.models.sequence import BehaviourSequenceEncoder, SequenceEmbedding

D_ITEM, D_SIDE = 6, 3


def _encoder(**kwargs):
    keras.utils.set_random_seed(0)
    return BehaviourSequenceEncoder(**kwargs)


def _row(valid: int, padded_to: int, seed: int = 0, pad_value: float = 0.0):
    """One row: `valid` random behaviours followed by padding holding `pad_value`."""
    rng = np.random.default_rng(seed)
    items = np.full([1, padded_to, D_ITEM], pad_value, np.float32)
    sides = np.full([1, padded_to, D_SIDE], pad_value, np.float32)
    items[0, :valid] = rng.normal(size=[valid, D_ITEM])
    sides[0, :valid] = rng.normal(size=[valid, D_SIDE])
    mask = np.arange(padded_to)[None, :] < valid
    return items, sides, mask


def _run(encoder, items, sides, mask, training=False):
    return encoder(tf.constant(items), tf.constant(sides), mask=tf.constant(mask), training=training).numpy()


def test_defaults_are_four_heads_of_32_and_output_128():
    encoder = _encoder()
    items, sides, mask = _row(3, 5)
    out = encoder(tf.constant(np.repeat(items, 2, 0)), tf.constant(np.repeat(sides, 2, 0)), mask=tf.constant(np.repeat(mask, 2, 0)))
    assert out.shape == (2, 128)
    attention = encoder.attention.get_config()
    assert (attention["num_heads"], attention["key_dim"]) == (4, 32)
    assert encoder.ff_dim == 256


@pytest.mark.parametrize("training", [False, True])
def test_padded_row_equals_unpadded_row(training):
    encoder = _encoder(dropout=0.0)
    short = _run(encoder, *_row(3, 3), training=training)
    padded = _run(encoder, *_row(3, 5), training=training)
    np.testing.assert_allclose(padded, short, atol=1e-5)


def test_values_at_padded_positions_change_nothing():
    encoder = _encoder()
    zeros = _run(encoder, *_row(3, 6, pad_value=0.0))
    large = _run(encoder, *_row(3, 6, pad_value=1e4))
    np.testing.assert_allclose(large, zeros, atol=1e-5)
    items, sides, mask = _row(3, 6)
    items[0, 3:] = np.nan
    sides[0, 3:] = np.inf
    np.testing.assert_allclose(_run(encoder, items, sides, mask), zeros, atol=1e-5)


def test_padding_may_sit_anywhere_in_the_row():
    encoder = _encoder()
    items, sides, mask = _row(3, 3)
    spread_items = np.zeros([1, 6, D_ITEM], np.float32)
    spread_sides = np.ones([1, 6, D_SIDE], np.float32)
    spread_items[0, [0, 2, 5]] = items[0]
    spread_sides[0, [0, 2, 5]] = sides[0]
    spread_mask = np.isin(np.arange(6), [0, 2, 5])[None, :]
    np.testing.assert_allclose(
        _run(encoder, spread_items, spread_sides, spread_mask), _run(encoder, items, sides, mask), atol=1e-5
    )


def test_all_padding_row_pools_to_zeros_without_nan():
    encoder = _encoder()
    items, sides, mask = _row(3, 4)
    batch_items = np.concatenate([items, np.random.default_rng(1).normal(size=items.shape).astype(np.float32)])
    batch_sides = np.concatenate([sides, sides])
    batch_mask = np.concatenate([mask, np.zeros_like(mask)])
    with tf.GradientTape() as tape:
        out = encoder(tf.constant(batch_items), tf.constant(batch_sides), mask=tf.constant(batch_mask), training=True)
        variables = encoder.trainable_variables
        loss = tf.reduce_sum(out**2)
    out = out.numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1], np.zeros(128, np.float32))
    assert np.abs(out[0]).max() > 0
    for grad in tape.gradient(loss, variables):
        assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy()))


def test_padded_inputs_get_zero_gradient():
    encoder = _encoder()
    items, sides, mask = _row(3, 5, pad_value=0.7)
    items, sides = tf.constant(items), tf.constant(sides)
    with tf.GradientTape() as tape:
        tape.watch([items, sides])
        loss = tf.reduce_sum(tf.sin(encoder(items, sides, mask=tf.constant(mask), training=True)))
    d_items, d_sides = (g.numpy() for g in tape.gradient(loss, [items, sides]))
    np.testing.assert_array_equal(d_items[0, 3:], 0.0)
    np.testing.assert_array_equal(d_sides[0, 3:], 0.0)
    assert np.all(np.abs(d_items[0, :3]).max(axis=-1) > 0)
    assert np.all(np.abs(d_sides[0, :3]).max(axis=-1) > 0)  # each valid side vector matters


def test_side_features_of_a_valid_position_change_the_output():
    encoder = _encoder()
    items, sides, mask = _row(3, 5)
    before = _run(encoder, items, sides, mask)
    sides[0, 1] += 1.0
    after = _run(encoder, items, sides, mask)
    assert np.abs(after - before).max() > 1e-3


def test_permuting_valid_behaviours_with_their_side_features_changes_nothing():
    """No position encodings: the pooled self-attention is a function of the set of behaviours."""
    encoder = _encoder()
    items, sides, mask = _row(4, 6)
    order = [2, 0, 3, 1, 4, 5]
    np.testing.assert_allclose(
        _run(encoder, items[:, order], sides[:, order], mask[:, order]), _run(encoder, items, sides, mask), atol=1e-5
    )
    # Permuting the side features alone is a different sequence.
    swapped = sides.copy()
    swapped[0, [0, 1]] = sides[0, [1, 0]]
    assert np.abs(_run(encoder, items, swapped, mask) - _run(encoder, items, sides, mask)).max() > 1e-3


def test_behaviours_attend_to_each_other():
    """Pooled f({a, b}) differs from the mean of f({a}) and f({b}): positions interact through attention."""
    encoder = _encoder()
    items, sides, mask = _row(2, 2)
    together = _run(encoder, items, sides, mask)
    alone = [_run(encoder, items[:, [k]], sides[:, [k]], mask[:, [k]]) for k in range(2)]
    assert np.abs(together - (alone[0] + alone[1]) / 2).max() > 1e-3


def test_dropout_only_in_training():
    encoder = _encoder(dropout=0.5)
    items, sides, mask = _row(4, 4)
    np.testing.assert_array_equal(_run(encoder, items, sides, mask), _run(encoder, items, sides, mask))
    first, second = (_run(encoder, items, sides, mask, training=True) for _ in range(2))
    assert np.abs(first - second).max() > 1e-4


def test_encoder_config_round_trips():
    encoder = BehaviourSequenceEncoder(num_heads=2, head_dim=8, ff_dim=24, dropout=0.1, name="enc")
    config = encoder.get_config()
    assert {k: config[k] for k in ("num_heads", "head_dim", "ff_dim", "dropout")} == {
        "num_heads": 2, "head_dim": 8, "ff_dim": 24, "dropout": 0.1
    }
    clone = keras.layers.deserialize(keras.layers.serialize(encoder))
    assert type(clone) is BehaviourSequenceEncoder and clone.get_config() == config
    assert clone.model_dim == 16
    items, sides, mask = _row(3, 4)
    original = _run(encoder, items, sides, mask)
    _run(clone, items, sides, mask)
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(_run(clone, items, sides, mask), original, atol=1e-6)


# --- SequenceEmbedding -------------------------------------------------------------------------------

def _spec(name, buckets, dim):
    return FeatureSpec(name=name, kind=FeatureKind.SEQUENCE, dim=dim, hash_buckets=buckets, max_len=5)


SPECS = [_spec("hist_item_id", 30, 6), _spec("hist_category_id", 10, 3), _spec("hist_dwell_bucket", 8, 2), _spec("hist_type", 4, 2)]
ITEMS, SIDES = ("hist_item_id", "hist_category_id"), ("hist_dwell_bucket", "hist_type")


def _ids(rows):
    """rows: name -> list of id lists; returns name -> [B, L] int64."""
    return {name: tf.constant(value, tf.int64) for name, value in rows.items()}


def _sequence_embedding(tables=None, **encoder_kwargs):
    keras.utils.set_random_seed(0)
    tables = tables if tables is not None else build_tables(SPECS)
    return SequenceEmbedding(tables, ITEMS, SIDES, BehaviourSequenceEncoder(**encoder_kwargs)), tables


BASE = {
    "hist_item_id": [[5, 9, 3, 0, 0]],
    "hist_category_id": [[1, 2, 1, 0, 0]],
    "hist_dwell_bucket": [[3, 1, 2, 0, 0]],
    "hist_type": [[1, 1, 2, 0, 0]],
}


def test_sequence_embedding_ignores_ids_and_table_rows_at_padding():
    layer, tables = _sequence_embedding()
    base = layer(_ids(BASE)).numpy()
    assert base.shape == (1, layer.output_dim) == (1, 128)
    short = layer(_ids({k: [v[0][:3]] for k, v in BASE.items()})).numpy()
    np.testing.assert_allclose(short, base, atol=1e-5)
    # Other features' ids at padded positions (the first item feature is PAD_ID there).
    noisy = {k: [v[0][:3] + [4, 3]] for k, v in BASE.items()}
    noisy["hist_item_id"] = BASE["hist_item_id"]
    np.testing.assert_allclose(layer(_ids(noisy)).numpy(), base, atol=1e-5)
    # The padding row of every table.
    for table in tables.values():
        weights = table.embeddings.numpy()
        weights[PAD_ID] = 3.0
        table.embeddings.assign(weights)
    np.testing.assert_allclose(layer(_ids(BASE)).numpy(), base, atol=1e-5)


def test_sequence_embedding_side_feature_changes_output():
    layer, _ = _sequence_embedding()
    base = layer(_ids(BASE)).numpy()
    changed = dict(BASE, hist_dwell_bucket=[[3, 6, 2, 0, 0]])
    assert np.abs(layer(_ids(changed)).numpy() - base).max() > 1e-3


def test_sequence_embedding_all_padding_row_is_zero():
    layer, _ = _sequence_embedding()
    ids = {k: v + [[0, 0, 0, 0, 0]] for k, v in BASE.items()}
    ids["hist_type"][1] = [2, 2, 2, 2, 2]  # side ids are ignored where the item is padding
    out = layer(_ids(ids)).numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1], 0.0)


def test_sequence_embeddings_share_the_given_tables():
    teacher, tables = _sequence_embedding()
    student = SequenceEmbedding({"hist_item_id": tables["hist_item_id"]}, ["hist_item_id"], [], BehaviourSequenceEncoder(), name="student_seq")
    teacher(_ids(BASE))
    student(_ids(BASE))
    shared = tables["hist_item_id"].embeddings
    assert any(v is shared for v in teacher.trainable_variables)
    assert any(v is shared for v in student.trainable_variables)
    assert {v.ref() for v in teacher.trainable_variables} & {v.ref() for v in student.trainable_variables} == {shared.ref()}
    before = student(_ids(BASE)).numpy()
    shared.assign_add(tf.ones_like(shared))
    assert np.abs(student(_ids(BASE)).numpy() - before).max() > 1e-4


def test_sequence_embedding_missing_table_is_an_error():
    tables = build_tables(SPECS[:1])
    with pytest.raises(ValueError, match="hist_type"):
        SequenceEmbedding(tables, ["hist_item_id"], ["hist_type"], BehaviourSequenceEncoder())
