"""Eq. (3) and Section 5.2: the inner-product model, its towers and its separable user/item sides."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec, Side
from pfd_tf.models.embedding import FeatureEmbedding, build_tables
from pfd_tf.models.sequence import BehaviourSequenceEncoder, SequenceEmbedding
from pfd_tf.models.two_tower import ProjectionTower, TwoTowerRanker

USER = FeatureSpec(name="user_id", kind=FeatureKind.CATEGORICAL, dim=8, side=Side.USER, hash_buckets=20)
ITEM = FeatureSpec(name="item_id", kind=FeatureKind.CATEGORICAL, dim=8, side=Side.ITEM, hash_buckets=20)
CATEGORY = FeatureSpec(name="category_id", kind=FeatureKind.CATEGORICAL, dim=4, side=Side.ITEM, hash_buckets=6)
HIST_ITEM = FeatureSpec(name="hist_item_id", kind=FeatureKind.SEQUENCE, dim=8, side=Side.USER, hash_buckets=20, max_len=4)
HIST_DWELL = FeatureSpec(name="hist_dwell_bucket", kind=FeatureKind.SEQUENCE, dim=4, side=Side.USER, hash_buckets=5, max_len=4)
SPECS = [USER, ITEM, CATEGORY, HIST_ITEM, HIST_DWELL]


def _model(units=(32, 16), scale=5.0, seed=0):
    keras.utils.set_random_seed(seed)
    tables = build_tables(SPECS)
    sequence = SequenceEmbedding(tables, ["hist_item_id"], ["hist_dwell_bucket"], BehaviourSequenceEncoder(num_heads=2, head_dim=8))
    return TwoTowerRanker(
        user_inputs=[FeatureEmbedding([USER], tables), sequence],
        item_inputs=FeatureEmbedding([ITEM, CATEGORY], tables),
        user_tower=ProjectionTower(units, name="user_tower"),
        item_tower=ProjectionTower(units, name="item_tower"),
        scale=scale,
    )


def _ids(batch=8, seed=0):
    rng = np.random.default_rng(seed)
    hist = rng.integers(1, 20, [batch, 4])
    hist[:, 3] = 0
    return {
        "user_id": tf.constant(rng.integers(0, 20, batch), tf.int64),
        "item_id": tf.constant(rng.integers(0, 20, batch), tf.int64),
        "category_id": tf.constant(rng.integers(0, 6, batch), tf.int64),
        "hist_item_id": tf.constant(hist, tf.int64),
        "hist_dwell_bucket": tf.constant(rng.integers(1, 5, [batch, 4]), tf.int64),
    }


def test_logits_are_scaled_inner_products_of_unit_vectors():
    model = _model(scale=5.0)
    ids = _ids()
    logits = model(ids, training=False).numpy()
    users = model.user_vectors(ids).numpy()
    items = model.item_vectors(ids).numpy()
    assert logits.shape == (8,) and users.shape == items.shape == (8, 16)
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(logits, 5.0 * np.sum(users * items, axis=1), atol=1e-5)
    assert np.all(np.abs(logits) <= 5.0 + 1e-5)


def test_scale_is_applied():
    ids = _ids()
    np.testing.assert_allclose(_model(scale=2.0)(ids).numpy() * 2.5, _model(scale=5.0)(ids).numpy(), atol=1e-5)


def test_user_side_never_reads_item_features_and_vice_versa():
    model = _model()
    ids, other = _ids(seed=0), _ids(seed=1)
    users, items = model.user_vectors(ids).numpy(), model.item_vectors(ids).numpy()
    item_changed = dict(ids, item_id=other["item_id"], category_id=other["category_id"])
    user_changed = dict(ids, **{k: other[k] for k in ("user_id", "hist_item_id", "hist_dwell_bucket")})
    np.testing.assert_array_equal(model.user_vectors(item_changed).numpy(), users)
    np.testing.assert_array_equal(model.item_vectors(user_changed).numpy(), items)
    # ...while each side does read its own features, the behaviour sequence included.
    assert np.abs(model.item_vectors(item_changed).numpy() - items).max() > 1e-4
    assert np.abs(model.user_vectors(user_changed).numpy() - users).max() > 1e-4
    seq_changed = dict(ids, hist_dwell_bucket=other["hist_dwell_bucket"])
    assert np.abs(model.user_vectors(seq_changed).numpy() - users).max() > 1e-4
    # Item vectors need only item features: computable offline for all candidates.
    only_items = {k: ids[k] for k in ("item_id", "category_id")}
    np.testing.assert_array_equal(model.item_vectors(only_items).numpy(), items)


def test_vectors_default_to_inference_mode():
    model = _model()
    ids = _ids()
    model(ids, training=False)
    moving = [v for v in model.user_tower.non_trainable_variables if "moving_mean" in v.name][0]
    before = moving.numpy().copy()
    model.user_vectors(ids)
    np.testing.assert_array_equal(moving.numpy(), before)
    model(ids, training=True)
    assert np.abs(moving.numpy() - before).max() > 0


def test_learns_a_separable_toy_task():
    """label = user parity == item parity; a few Adam steps lower the log loss."""
    model = _model(units=(32, 16), seed=3)
    ids = _ids(batch=64, seed=2)
    labels = tf.cast(tf.equal(ids["user_id"] % 2, ids["item_id"] % 2), tf.float32)
    optimizer = keras.optimizers.Adam(0.02)

    def loss_fn(training):
        logits = model(ids, training=training)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    first = float(loss_fn(training=False))
    tables = {"user_id": model.user_inputs[0].tables["user_id"], "item_id": model.item_inputs[0].tables["item_id"]}
    before = {name: table.embeddings.numpy().copy() for name, table in tables.items()}
    losses = [float(step()) for _ in range(30)]
    assert losses[-1] < 0.7 * losses[0]
    assert float(loss_fn(training=False)) < first
    for name, table in tables.items():  # both sides' tables learned
        assert np.abs(table.embeddings.numpy() - before[name]).max() > 0, name


def test_gradients_reach_both_sides_and_the_sequence_encoder():
    model = _model()
    ids = _ids()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(ids, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.name for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing
    assert any("self_attention" in v.name for v in model.trainable_variables)


def test_projection_tower_shape_and_layers():
    tower = ProjectionTower()
    out = tower(tf.random.normal([3, 40]), training=False)
    assert out.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, atol=1e-5)
    widths = [layer.units for layer in tower.hidden if isinstance(layer, keras.layers.Dense)]
    assert widths == [512, 256] and tower.projection.units == 128
    assert tower.projection.get_config()["activation"] == "linear"
    assert np.any(out.numpy() < 0)  # the last layer is linear, not followed by an activation


def test_projection_tower_config_round_trips():
    tower = ProjectionTower((16, 8), leaky_relu_alpha=0.2, name="tower")
    config = tower.get_config()
    assert config["units"] == [16, 8] and config["leaky_relu_alpha"] == 0.2
    clone = keras.layers.deserialize(keras.layers.serialize(tower))
    assert type(clone) is ProjectionTower and clone.get_config() == config
    x = tf.random.normal([4, 5])
    tower(x)
    clone(x)
    clone.set_weights(tower.get_weights())
    np.testing.assert_allclose(clone(x, training=False).numpy(), tower(x, training=False).numpy(), atol=1e-6)


def test_empty_projection_tower_is_an_error():
    with pytest.raises(ValueError):
        ProjectionTower(())
