"""DAGFM (KD-DAGFM, Figure 2): each order-(k + 1) interaction is a path of length k in the field DAG.

The propagation layer against a direct numpy sum over the DAG's paths, with
hand-set weights (3 fields, dim 2, depth 2); hand values for one layer; the
degree of each layer's states; the DAG's direction; the body's linear layer
over the pooled states; and a DAGFM student trained by the distiller.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, FeatureKind, FeatureSpec, ModelConfig, NetworkConfig, ZooModel
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.models.build import dummy_ids
from pfd_tf.models.embedding import build_tables
from pfd_tf.models.zoo import build_network
from pfd_tf.models.zoo.layers import DAGFMPropagation
from pfd_tf.trainer import build_and_compile

E = np.array([[[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]],
              [[0.5, -2.0], [1.5, 0.5], [-1.0, 2.0]]], np.float32)  # [B=2, m=3, d=2]
C = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -1.0, 2.0]], np.float32)
# Edge weights [depth=2][f, s, d]; the entries f > s are not edges and must not count.
P = [((np.arange(18).reshape(3, 3, 2) % 5) - 2.0).astype(np.float32) * 0.5,
     ((np.arange(18).reshape(3, 3, 2) % 3) - 1.0).astype(np.float32)]
Q = [((np.arange(18).reshape(3, 3, 2) % 4) - 1.5).astype(np.float32),
     ((np.arange(18).reshape(3, 3, 2) % 7) - 3.0).astype(np.float32) * 0.25]


def _layer(interaction: str, depth: int, connect=C, p=P, q=Q) -> DAGFMPropagation:
    layer = DAGFMPropagation(interaction, depth)
    layer(tf.constant(E))
    weights = [connect] + list(p[:depth]) + (list(q[:depth]) if interaction == "outer" else [])
    layer.set_weights(weights)
    return layer


def _paths(fields: int, length: int):
    """Every path s_0 <= s_1 <= ... <= s_length of the DAG (edges f -> s for s >= f)."""
    return [path for path in itertools.product(range(fields), repeat=length + 1)
            if all(a <= b for a, b in zip(path, path[1:]))]


def _by_paths(interaction: str, depth: int) -> np.ndarray:
    """The node states `[B, depth + 1, m, d]` summed directly over the DAG's paths (no dynamic programming)."""
    h0 = np.einsum("st,btd->bsd", C, E)
    out = np.zeros((E.shape[0], depth + 1, 3, 2), np.float64)
    for k in range(depth + 1):
        for path in _paths(3, k):
            value = h0[:, path[0]]
            for i, (f, s) in enumerate(zip(path, path[1:])):
                if interaction == "inner":  # one more field of the interaction, the edge's weights on it
                    value = h0[:, s] * P[i][f, s] * value
                else:  # <v, p_fs> q_fs: the edge's rank-1 map, then the next field
                    value = h0[:, s] * (value @ P[i][f, s])[:, None] * Q[i][f, s]
            out[:, k, path[-1]] += value
    return out


@pytest.mark.parametrize("interaction", ["inner", "outer"])
def test_each_layer_is_the_sum_over_the_paths_of_the_dag(interaction):
    states, sums = _layer(interaction, 2)(tf.constant(E))
    assert states.shape == (2, 3, 3, 2) and sums.shape == (2, 3, 3)
    np.testing.assert_allclose(states.numpy(), _by_paths(interaction, 2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sums.numpy(), _by_paths(interaction, 2).sum(-1), rtol=1e-5, atol=1e-5)


def test_hand_values_of_one_layer():
    identity, ones = np.eye(3, dtype=np.float32), [np.ones((3, 3, 2), np.float32)]
    inner = _layer("inner", 1, identity, ones)(tf.constant(E[:1]))[0].numpy()[0, 1]
    # h1_s = e_s * sum_{f <= s} e_f: e0 e0, e1 (e0 + e1), e2 (e0 + e1 + e2)
    np.testing.assert_allclose(inner, [[1.0, 4.0], [0.0, -1.0], [12.0, 2.0]])
    p = [np.tile(np.array([1.0, 0.0], np.float32), (3, 3, 1))]
    outer = _layer("outer", 1, identity, p, ones)(tf.constant(E[:1]))[0].numpy()[0, 1]
    # <e_f, (1, 0)> (1, 1) summed over f <= s, times e_s: e0 * 1, e1 * (1 + 0), e2 * (1 + 0 + 3)
    np.testing.assert_allclose(outer, [[1.0, 2.0], [0.0, -1.0], [12.0, 4.0]])


@pytest.mark.parametrize("interaction", ["inner", "outer"])
def test_layer_k_is_an_interaction_of_order_k_plus_1(interaction):
    layer = _layer(interaction, 2)
    base, scaled = layer(tf.constant(E))[0].numpy(), layer(tf.constant(1.5 * E))[0].numpy()
    for k in range(3):  # homogeneous of degree k + 1 in the embeddings
        np.testing.assert_allclose(scaled[:, k], 1.5 ** (k + 1) * base[:, k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interaction", ["inner", "outer"])
def test_a_field_hears_only_the_fields_before_it(interaction):
    layer = _layer(interaction, 2, connect=np.eye(3, dtype=np.float32))
    moved = E.copy()
    moved[:, 2] += 5.0
    before, after = layer(tf.constant(E))[0].numpy(), layer(tf.constant(moved))[0].numpy()
    np.testing.assert_array_equal(before[:, :, :2], after[:, :, :2])  # fields 0 and 1: no edge from field 2
    assert not np.allclose(before[:, 1:, 2], after[:, 1:, 2])


def test_the_layer_refuses_an_unknown_type_or_no_depth_and_round_trips_its_config():
    with pytest.raises(ValueError, match="unknown DAGFM interaction 'cross'"):
        DAGFMPropagation("cross", 2)
    with pytest.raises(ValueError, match="at least one propagation layer"):
        DAGFMPropagation("inner", 0)
    layer = DAGFMPropagation("outer", 4, name="p")
    again = DAGFMPropagation.from_config(layer.get_config())
    assert (again.interaction, again.depth, again.name) == ("outer", 4, "p")


FIELDS = [FeatureSpec(name=n, kind=FeatureKind.CATEGORICAL, dim=2, hash_buckets=3) for n in "abc"]


@pytest.mark.parametrize("interaction", ["inner", "outer"])
def test_the_logit_is_a_linear_layer_over_every_layers_pooled_node_states(interaction):
    tables = build_tables(FIELDS)
    network = build_network(NetworkConfig(model=ZooModel.DAGFM, dagfm_type=interaction, dagfm_layers=2),
                            ModelConfig(), FIELDS, tables, {}, (8,), "net")
    network(dummy_ids(FIELDS))
    for field, table in zip(range(3), tables.values()):  # ids 0 and 1 pick E[0] and E[1]
        table.embeddings.assign(np.concatenate([E[:, field], np.zeros((1, 2), np.float32)]))
    propagation = network.body.propagation
    propagation.set_weights([C] + P + (Q if interaction == "outer" else []))
    w = np.arange(9, dtype=np.float32)[:, None] / 10.0 - 0.3
    network.body.logit.set_weights([w, np.array([0.25], np.float32)])
    ids = {name: tf.constant([0, 1], tf.int64) for name in "abc"}
    out = network.forward(ids)
    states = _by_paths(interaction, 2)
    pooled = states.sum(-1).reshape(2, 9)  # layer-major: [h0 of fields 0..2, h1 ..., h2 ...]
    np.testing.assert_allclose(out.hidden["final"].numpy(), pooled, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.hidden["dagfm"].numpy(), states.reshape(2, 18), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.logits.numpy(), pooled @ w[:, 0] + 0.25, rtol=1e-5, atol=1e-5)
    assert network.linear_tables == {} and not any("deep" in v.name for v in network.variables)


@pytest.mark.parametrize("override, error", [
    ("student.dagfm_type=cross", r"student\.dagfm_type: unknown value 'cross' \(choose one of: inner, outer\)"),
    ("student.dagfm_layers=0", r"student\.dagfm_layers: must be positive"),
])
def test_bad_dagfm_keys_are_refused_by_key_at_load(tiny_config_path, override, error):
    with pytest.raises(ConfigError, match=error):
        config_lib.load(tiny_config_path, _dagfm_student() + [override])


def _dagfm_student(interaction: str = "inner") -> list[str]:
    """The tiny world with one embedding size (DAGFM stacks its fields), a DCN-v2 teacher on the regular
    features and a DAGFM student."""
    return [f"features.{name}.dim=4" for name in ("device", "price", "tags", "dwell", "cart")] + [
        "teachers=[{name: dcn, model: dcn_v2, features: regular, cross_layers: 2, cross_rank: 4}]",
        "student.model=dagfm", f"student.dagfm_type={interaction}", "student.dagfm_layers=2",
        "distill.lambda=0.5", "train.learning_rate=0.1"]


@pytest.mark.parametrize("interaction", ["inner", "outer"])
def test_a_dagfm_student_trains_under_the_distiller(tiny_config_path, interaction):
    config = config_lib.load(tiny_config_path, _dagfm_student(interaction))
    keras.utils.set_random_seed(0)
    distiller = build_and_compile(config, tf.distribute.get_strategy())
    dataset = make_dataset_fn(config, "train", 64, training=True)(None)
    ids, labels = next(iter(dataset))
    before = distiller.compute_losses(ids, labels, training=False)
    edges = [v.numpy().copy() for v in distiller.student.body.propagation.trainable_variables]
    distiller.fit(dataset, epochs=1, steps_per_epoch=30, verbose=0)
    after = distiller.compute_losses(ids, labels, training=False)
    assert float(after["loss_student"]) < float(before["loss_student"])
    assert float(after["loss_distill"]) < float(before["loss_distill"])
    for old, new in zip(edges, distiller.student.body.propagation.trainable_variables):
        assert not np.array_equal(old, new.numpy()), new.name
