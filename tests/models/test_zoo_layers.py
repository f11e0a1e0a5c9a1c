"""The zoo's interaction layers against hand computations in numpy, on tiny inputs with hand-set weights."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
import tensorflow_recommenders as tfrs
from pfd_tf.config import Normalization
from pfd_tf.models.zoo.layers import CIN, SENET, BilinearInteraction, DeepPart, FMInteraction, InteractingLayer

RNG = np.random.default_rng(7)


def _stack(batch=2, fields=3, dim=2):
    return RNG.normal(size=(batch, fields, dim)).astype(np.float32)


def _built(layer, inputs):
    """Calls `layer` once so its weights exist; returns it."""
    layer(tf.constant(inputs))
    return layer


def _relu(x):
    return np.maximum(x, 0.0)


# --- FM ----------------------------------------------------------------------------------------------


def test_fm_term_is_the_sum_of_pairwise_inner_products():
    stack = np.array([[[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]], np.float32)
    # <v0,v1> + <v0,v2> + <v1,v2> = (3 - 2) + (0.5 + 8) + (1.5 - 4) = 7
    np.testing.assert_allclose(FMInteraction()(tf.constant(stack)).numpy(), [[7.0]], rtol=1e-6)
    stack = _stack(batch=4, fields=5, dim=3)
    pairs = sum(np.sum(stack[:, i] * stack[:, j], axis=-1) for i, j in itertools.combinations(range(5), 2))
    np.testing.assert_allclose(FMInteraction()(tf.constant(stack)).numpy()[:, 0], pairs, rtol=1e-5)


# --- Cross (tensorflow-recommenders) -----------------------------------------------------------------


def test_full_rank_cross_is_x0_times_wx_plus_b_plus_x():
    x0 = RNG.normal(size=(2, 3)).astype(np.float32)
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    w = np.arange(9, dtype=np.float32).reshape(3, 3) / 10.0
    b = np.array([0.1, -0.2, 0.3], np.float32)
    layer = tfrs.layers.dcn.Cross(projection_dim=None)
    layer(tf.constant(x0), tf.constant(x))
    layer.set_weights([w, b])  # Dense kernel [in, out]: W x is x @ w
    expected = x0 * (x @ w + b) + x
    np.testing.assert_allclose(layer(tf.constant(x0), tf.constant(x)).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(layer(tf.constant(x0)).numpy(), x0 * (x0 @ w + b) + x0, rtol=1e-5)


def test_low_rank_cross_uses_w_as_the_product_of_two_thin_matrices():
    x0 = RNG.normal(size=(2, 4)).astype(np.float32)
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    u = RNG.normal(size=(4, 2)).astype(np.float32)  # [d, r]
    v = RNG.normal(size=(2, 4)).astype(np.float32)  # [r, d]
    b = np.array([0.1, -0.2, 0.3, 0.0], np.float32)
    layer = tfrs.layers.dcn.Cross(projection_dim=2)
    layer(tf.constant(x0), tf.constant(x))
    layer.set_weights([u, v, b])
    assert [w.shape for w in layer.get_weights()] == [(4, 2), (2, 4), (4,)]
    expected = x0 * (x @ (u @ v) + b) + x
    np.testing.assert_allclose(layer(tf.constant(x0), tf.constant(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


# --- CIN ---------------------------------------------------------------------------------------------


def _cin_layer(x0, previous, kernel, bias):
    """Eq. (6) of Lian et al. with loops: X^k_h = relu(sum_i sum_j W[j H + i, h] (X^{k-1}_i * X^0_j) + b_h)."""
    batch, fields, dim = x0.shape
    maps = previous.shape[1]
    out = np.zeros((batch, kernel.shape[1], dim), np.float32)
    for h in range(kernel.shape[1]):
        for i in range(maps):
            for j in range(fields):
                out[:, h] += kernel[j * maps + i, h] * previous[:, i] * x0[:, j]
        out[:, h] += bias[h]
    return _relu(out)


def test_cin_one_layer_sum_pools_its_feature_maps():
    x0 = _stack(batch=2, fields=2, dim=2)
    layer = _built(CIN([3]), x0)
    kernel = RNG.normal(size=(4, 3)).astype(np.float32)  # [m * H_0, H_1] = [2 * 2, 3]
    bias = np.array([0.1, -0.5, 0.2], np.float32)
    layer.set_weights([kernel, bias])
    expected = _cin_layer(x0, x0, kernel, bias).sum(axis=-1)
    np.testing.assert_allclose(layer(tf.constant(x0)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_cin_two_layers_split_half_sends_the_first_half_on_and_the_second_half_out():
    x0 = _stack(batch=2, fields=2, dim=2)
    layer = _built(CIN([2, 3]), x0)
    k1, b1 = RNG.normal(size=(4, 2)).astype(np.float32), np.array([0.3, 0.1], np.float32)
    k2, b2 = RNG.normal(size=(2, 3)).astype(np.float32), np.array([0.0, 0.2, -0.1], np.float32)  # [m * 1, 3]
    layer.set_weights([k1, b1, k2, b2])
    first = _cin_layer(x0, x0, k1, b1)  # [B, 2, d]: map 0 goes on, map 1 out
    second = _cin_layer(x0, first[:, :1], k2, b2)
    expected = np.concatenate([first[:, 1:].sum(-1), second.sum(-1)], axis=-1)
    out = layer(tf.constant(x0)).numpy()
    assert out.shape == (2, 4) == (2, layer.output_maps)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_cin_without_split_half_keeps_every_map_both_ways():
    x0 = _stack(batch=2, fields=2, dim=2)
    layer = _built(CIN([2, 1], split_half=False), x0)
    k1, b1 = RNG.normal(size=(4, 2)).astype(np.float32), np.zeros(2, np.float32)
    k2, b2 = RNG.normal(size=(4, 1)).astype(np.float32), np.zeros(1, np.float32)
    layer.set_weights([k1, b1, k2, b2])
    first = _cin_layer(x0, x0, k1, b1)
    second = _cin_layer(x0, first, k2, b2)
    expected = np.concatenate([first.sum(-1), second.sum(-1)], axis=-1)
    np.testing.assert_allclose(layer(tf.constant(x0)).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sizes,split_half", [([4, 2], True), ([2, 3], False), ([6, 4, 3], True)])
def test_cin_computes_what_deepctrs_cin_computes_with_the_same_weights(sizes, split_half):
    """DeepCTR 0.9.4's CIN (the optional `peer` extra), its filters `[1, m H, size]` set to our kernels and both
    given the same non-zero biases: the same pooled maps, layer by layer, split-half or not."""
    pytest.importorskip("deepctr")
    from deepctr.layers.interaction import CIN as DeepCTRCIN

    x0 = _stack(batch=3, fields=4, dim=3)
    ours = _built(CIN(sizes, split_half=split_half), x0)
    theirs = _built(DeepCTRCIN(sizes, split_half=split_half, l2_reg=0.0), x0)
    for k, (kernel, bias) in enumerate(zip(ours.kernels, ours.biases)):
        assert theirs.filters[k].shape[1:] == kernel.shape
        bias.assign(RNG.normal(size=bias.shape).astype(np.float32))
        theirs.filters[k].assign(kernel[None])
        theirs.bias[k].assign(bias)
    np.testing.assert_allclose(ours(tf.constant(x0)).numpy(), theirs(tf.constant(x0)).numpy(), rtol=1e-5, atol=1e-6)


def test_cin_split_half_needs_even_inner_layers():
    with pytest.raises(ValueError, match="even"):
        CIN([3, 2])


# --- AutoInt's interacting layer ---------------------------------------------------------------------


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def test_interacting_layer_is_multi_head_self_attention_with_a_projected_residual():
    stack = _stack(batch=2, fields=3, dim=2)
    heads, dim = 2, 2
    layer = _built(InteractingLayer(heads, dim, residual=True), stack)
    wq, wk, wv, wr = (RNG.normal(size=(2, heads * dim)).astype(np.float32) for _ in range(4))
    layer.set_weights([wq, wk, wv, wr])
    expected = np.zeros((2, 3, heads * dim), np.float32)
    for b in range(2):
        for h in range(heads):
            cols = slice(h * dim, (h + 1) * dim)
            q, k, v = stack[b] @ wq[:, cols], stack[b] @ wk[:, cols], stack[b] @ wv[:, cols]
            for m in range(3):
                alpha = _softmax(np.array([q[m] @ k[j] for j in range(3)]))
                expected[b, m, cols] = sum(alpha[j] * v[j] for j in range(3))
        expected[b] += stack[b] @ wr
    np.testing.assert_allclose(layer(tf.constant(stack)).numpy(), _relu(expected), rtol=1e-5, atol=1e-6)


def test_interacting_layer_without_residual_has_no_residual_kernel():
    layer = _built(InteractingLayer(heads=1, dim=3, residual=False), _stack())
    assert [w.shape for w in layer.get_weights()] == [(2, 3)] * 3


# --- FiBiNET's SENET and bilinear interaction --------------------------------------------------------


def test_senet_reweights_each_field_by_its_excitation():
    stack = _stack(batch=2, fields=3, dim=2)
    layer = _built(SENET(reduction=3), stack)  # 3 fields // 3 -> 1 unit
    w1 = np.array([[0.5], [-1.0], [2.0]], np.float32)
    w2 = np.array([[1.0, -0.5, 3.0]], np.float32)
    layer.set_weights([w1, w2])
    z = stack.mean(axis=-1)
    a = _relu(_relu(z @ w1) @ w2)
    np.testing.assert_allclose(layer(tf.constant(stack)).numpy(), stack * a[:, :, None], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bilinear_type,matrices", [("field_all", 1), ("field_each", 2), ("field_interaction", 3)])
def test_bilinear_interaction_of_each_type(bilinear_type, matrices):
    stack = _stack(batch=2, fields=3, dim=2)
    layer = _built(BilinearInteraction(bilinear_type), stack)
    kernel = RNG.normal(size=(matrices, 2, 2)).astype(np.float32)
    layer.set_weights([kernel])
    expected = []
    for n, (i, j) in enumerate(itertools.combinations(range(3), 2)):
        w = kernel[{"field_all": 0, "field_each": i, "field_interaction": n}[bilinear_type]]
        expected.append((stack[:, i] @ w) * stack[:, j])
    np.testing.assert_allclose(layer(tf.constant(stack)).numpy(), np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)


def test_bilinear_interaction_rejects_an_unknown_type_and_a_single_field():
    with pytest.raises(ValueError, match="field_all, field_each, field_interaction"):
        BilinearInteraction("interaction")
    with pytest.raises(ValueError, match="at least 2 fields"):
        BilinearInteraction()(tf.zeros([2, 1, 2]))


# --- the DNN part ------------------------------------------------------------------------------------


def test_deep_part_names_each_hidden_output_and_returns_the_last():
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    deep = DeepPart([2, 1], Normalization.NONE, leaky_relu_alpha=0.1)
    deep(tf.constant(x))
    w0, b0 = RNG.normal(size=(3, 2)).astype(np.float32), np.array([0.1, -0.1], np.float32)
    w1, b1 = RNG.normal(size=(2, 1)).astype(np.float32), np.array([0.2], np.float32)
    deep.set_weights([w0, b0, w1, b1])
    leaky = lambda y: np.where(y > 0, y, 0.1 * y)  # noqa: E731
    h0 = leaky(x @ w0 + b0)
    h1 = leaky(h0 @ w1 + b1)
    out, hidden = deep(tf.constant(x))
    assert sorted(hidden) == ["deep_0", "deep_1"]
    np.testing.assert_allclose(hidden["deep_0"].numpy(), h0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hidden["deep_1"].numpy(), h1, rtol=1e-5, atol=1e-6)


def test_deep_part_with_dropout_names_the_dropped_outputs_once_per_layer():
    deep = DeepPart([4, 3], Normalization.LAYER, dropout=0.5)
    out, hidden = deep(tf.ones([2, 3]), training=True)
    assert sorted(hidden) == ["deep_0", "deep_1"] and hidden["deep_1"] is out
    assert any(isinstance(layer, keras.layers.Dropout) for layer in deep.hidden)


# --- Keras etiquette ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: FMInteraction(), lambda: CIN([2, 3]), lambda: CIN([2], activation="linear", split_half=False),
    lambda: InteractingLayer(2, 3, residual=False), lambda: SENET(2), lambda: BilinearInteraction("field_each"),
], ids=["fm", "cin", "cin_linear", "interacting", "senet", "bilinear"])
def test_layers_round_trip_through_their_serialized_config(make):
    stack = tf.constant(_stack(batch=2, fields=3, dim=4))
    layer = make()
    expected = layer(stack)
    copy = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(copy) is type(layer) and copy.get_config() == layer.get_config()
    copy(stack)
    copy.set_weights(layer.get_weights())
    np.testing.assert_allclose(copy(stack).numpy(), expected.numpy(), rtol=1e-6)


def test_deep_part_round_trips_through_its_config():
    deep = DeepPart([3, 2], Normalization.BATCH, batch_norm_momentum=0.9, leaky_relu_alpha=0.2, dropout=0.1)
    copy = DeepPart.from_config(deep.get_config())
    assert copy.get_config() == deep.get_config()
