"""Multi-task backbones (Shared-Bottom, MMoE, PLE, Cross-Stitch) with task towers: shapes, gates, hand
computations in numpy, which variables each task's loss moves, and config round trips."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.multitask.cross_stitch import CrossStitch
from pfd_tf.multitask.mmoe import MMoE
from pfd_tf.multitask.ple import PLE
from pfd_tf.multitask.shared_bottom import SharedBottom
from pfd_tf.multitask.towers import MultiTaskNetwork, TaskTowers

RNG = np.random.default_rng(21)
TASKS = ("a", "b")
PLAIN = {"normalization": "none"}  # Dense (with bias) -> LeakyReLU(0.01): easy to write in numpy


def _x(batch=5, dim=6):
    return tf.constant(RNG.normal(size=(batch, dim)).astype(np.float32))


def _backbones():
    return {
        "shared_bottom": SharedBottom(TASKS, (4, 3), **PLAIN),
        "mmoe": MMoE(TASKS, experts=3, expert_units=(4,), **PLAIN),
        "cgc": PLE(TASKS, levels=1, task_experts=2, shared_experts=1, expert_units=(4,), **PLAIN),
        "ple": PLE(TASKS, levels=2, task_experts=2, shared_experts=1, expert_units=(4,), **PLAIN),
        "cross_stitch": CrossStitch(TASKS, (4, 3), **PLAIN),
    }


def _network(backbone, tower=(3,)):
    return MultiTaskNetwork(backbone, TaskTowers(backbone.tasks, tower, **PLAIN))


def _leaky(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _dense_leaky(layer_owner, x):
    """numpy of an `Expert` with one or more Dense(bias) -> LeakyReLU layers, from its current weights."""
    weights = layer_owner.get_weights()
    for kernel, bias in zip(weights[0::2], weights[1::2]):
        x = _leaky(x @ kernel + bias)
    return x


@pytest.mark.parametrize("name", list(_backbones()))
def test_every_backbone_gives_one_representation_and_one_logit_per_task(name):
    backbone = _backbones()[name]
    network = _network(backbone)
    x = _x(batch=5)
    out = network.forward(x, training=True)
    assert sorted(out.logits) == ["a", "b"]
    assert all(logits.shape == (5,) for logits in out.logits.values())
    width = {"shared_bottom": 3, "mmoe": 4, "cgc": 4, "ple": 4, "cross_stitch": 3}[name]
    for task in TASKS:
        assert out.hidden[f"{task}/representation"].shape == (5, width)
        assert out.hidden[f"{task}/final"].shape == (5, 3)
    # `call` gives the logits alone, the same ones (no normalization nor dropout: training changes nothing)
    for task in TASKS:
        np.testing.assert_allclose(network(x)[task].numpy(), out.logits[task].numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["mmoe", "cgc", "ple"])
def test_gates_are_distributions_over_their_experts(name):
    backbone = _backbones()[name]
    _, gates = backbone(_x(batch=7), with_gates=True)
    expected = {
        "mmoe": {"gate_a": 3, "gate_b": 3},
        "cgc": {"level0/gate_a": 3, "level0/gate_b": 3},
        "ple": {"level0/gate_a": 3, "level0/gate_b": 3, "level0/gate_shared": 5,
                "level1/gate_a": 3, "level1/gate_b": 3},
    }[name]
    assert {key: int(value.shape[-1]) for key, value in gates.items()} == expected
    for weights in gates.values():
        weights = weights.numpy()
        assert (weights > 0).all()
        np.testing.assert_allclose(weights.sum(axis=-1), np.ones(7), rtol=1e-6)


def test_cross_stitch_starts_at_the_papers_weights_and_mixes_columns_by_them():
    stitch = CrossStitch(("a", "b", "c"), (2,), self_weight=0.8, **PLAIN)
    x = _x(batch=3, dim=4)
    _, alphas = stitch(x, with_gates=True)
    np.testing.assert_allclose(alphas["stitch_0"].numpy(), [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]],
                               rtol=1e-6)
    alpha = np.array([[0.5, 0.3, 0.2], [0.0, 1.0, 0.0], [-1.0, 0.5, 1.5]], np.float32)
    stitch.stitches[0].alpha.assign(alpha)
    columns = {t: _dense_leaky(stitch.columns[t][0], x.numpy()) for t in ("a", "b", "c")}
    out = stitch(x)
    expected_a = 0.5 * columns["a"] + 0.3 * columns["b"] + 0.2 * columns["c"]
    expected_c = -1.0 * columns["a"] + 0.5 * columns["b"] + 1.5 * columns["c"]
    np.testing.assert_allclose(out["a"].numpy(), expected_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["b"].numpy(), columns["b"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["c"].numpy(), expected_c, rtol=1e-5, atol=1e-6)


def test_a_tiny_mmoe_with_hand_set_weights_equals_numpy():
    # Two experts Dense(3 -> 2) + LeakyReLU, two gates softmax(x W_g), on x = [1, 2, -1] and [0, -1, 3].
    mmoe = MMoE(TASKS, experts=2, expert_units=(2,), **PLAIN)
    x = np.array([[1.0, 2.0, -1.0], [0.0, -1.0, 3.0]], np.float32)
    mmoe(tf.constant(x))
    k0, b0 = np.array([[1, 0], [0, 1], [1, 1]], np.float32), np.array([0.5, -0.5], np.float32)
    k1, b1 = np.array([[-1, 2], [0.5, 0], [0, -1]], np.float32), np.array([0.0, 1.0], np.float32)
    ga = np.array([[1, 0], [0, 1], [0, 0]], np.float32)
    gb = np.array([[0, 0], [0, 0], [1, -1]], np.float32)
    mmoe.experts[0].set_weights([k0, b0])
    mmoe.experts[1].set_weights([k1, b1])
    mmoe.gates["a"].set_weights([ga])
    mmoe.gates["b"].set_weights([gb])
    # Row 1 by hand: expert 0: x k0 + b0 = [1 - 1 + .5, 2 - 1 - .5] = [0.5, 0.5];
    # expert 1: [-1 + 1, 2 + 0 + 1 + 1] = [0, 4]; gate a: softmax([1, 2]); gate b: softmax([-1, 1]).
    f0 = _leaky(x @ k0 + b0)
    f1 = _leaky(x @ k1 + b1)
    np.testing.assert_allclose(f0[0], [0.5, 0.5])
    np.testing.assert_allclose(f1[0], [0.0, 4.0])
    out, gates = mmoe(tf.constant(x), with_gates=True)
    for task, kernel in (("a", ga), ("b", gb)):
        g = _softmax(x @ kernel)
        np.testing.assert_allclose(gates[f"gate_{task}"].numpy(), g, rtol=1e-6)
        np.testing.assert_allclose(out[task].numpy(), g[:, :1] * f0 + g[:, 1:] * f1, rtol=1e-5, atol=1e-6)
    e1, e2 = np.exp(1.0), np.exp(2.0)
    np.testing.assert_allclose(out["a"].numpy()[0], (e1 * np.array([0.5, 0.5]) + e2 * np.array([0, 4])) / (e1 + e2),
                               rtol=1e-5)


def test_a_two_level_ple_equals_numpy_of_its_weights():
    ple = PLE(TASKS, levels=2, task_experts=2, shared_experts=1, expert_units=(3,), **PLAIN)
    x = _x(batch=4, dim=5)
    out, gates = ple(x, with_gates=True)
    xs = x.numpy()
    paths = {"a": xs, "b": xs, "shared": xs}
    for j, level in enumerate(ple.extraction):
        outputs = {path: [_dense_leaky(e, paths[path]) for e in experts] for path, experts in level["experts"].items()}
        new_paths = {}
        for path in ("a", "b", "shared"):
            if path not in level["gates"]:
                continue
            g = _softmax(paths[path] @ level["gates"][path].get_weights()[0])
            np.testing.assert_allclose(gates[f"level{j}/gate_{path}"].numpy(), g, rtol=1e-5)
            chosen = (outputs["a"] + outputs["b"] if path == "shared" else outputs[path]) + outputs["shared"]
            new_paths[path] = sum(g[:, i:i + 1] * chosen[i] for i in range(len(chosen)))
        paths = new_paths
    assert "level1/gate_shared" not in gates  # the last level has no shared gate
    for task in TASKS:
        np.testing.assert_allclose(out[task].numpy(), paths[task], rtol=1e-5, atol=1e-6)


def _moved_by(network, task, x):
    """Names of the variables a loss on `task`'s logit gives a nonzero gradient."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(network(x, training=True)[task] - 1.0))
    gradients = tape.gradient(loss, network.trainable_variables)
    return {v.name for v, g in zip(network.trainable_variables, gradients) if g is not None and np.any(g.numpy())}


def _under(names, *parts):
    return {n for n in names if all(p in n for p in parts)}


@pytest.mark.parametrize("name", list(_backbones()))
def test_a_tasks_loss_moves_only_what_that_task_reads(name):
    network = _network(_backbones()[name])
    x = _x(batch=16)
    network(x)
    every = {v.name for v in network.trainable_variables}
    moved = _moved_by(network, "a", x)
    tower_a, tower_b = _under(every, "/tower_a/"), _under(every, "/tower_b/")
    assert tower_a and tower_a <= moved
    assert not moved & tower_b
    if name == "shared_bottom":
        assert moved == tower_a | _under(every, "/bottom/")
    elif name == "mmoe":
        assert moved == tower_a | _under(every, "/expert_") | _under(every, "/gate_a/")
    elif name == "cgc":
        assert moved == tower_a | _under(every, "level0_a_expert") | _under(every, "level0_shared_expert") \
            | _under(every, "level0_gate_a/")
    elif name == "ple":
        # Level 0 reaches a's output through its own path and the shared gate (every level-0 expert);
        # at level 1 a reads its own experts, the shared ones and its gate: never b's last level.
        expected = (tower_a | _under(every, "level0_") - _under(every, "level0_gate_b/")
                    | _under(every, "level1_a_expert") | _under(every, "level1_shared_expert")
                    | _under(every, "level1_gate_a/"))
        assert moved == expected
        assert not moved & (_under(every, "level1_b_expert") | _under(every, "level1_gate_b/"))
    elif name == "cross_stitch":
        assert moved == every - tower_b  # the stitches mix b's column into a's


@pytest.mark.parametrize("name", list(_backbones()))
def test_config_round_trip_rebuilds_the_same_network(name):
    network = _network(_backbones()[name])
    x = _x(batch=3)
    expected = network(x)
    config = keras.layers.serialize(network)
    rebuilt = keras.layers.deserialize(config)
    assert type(rebuilt.backbone) is type(network.backbone)
    assert rebuilt.backbone.get_config() == {**network.backbone.get_config(), "name": rebuilt.backbone.name}
    rebuilt(x)
    rebuilt.set_weights(network.get_weights())
    for task in TASKS:
        np.testing.assert_allclose(rebuilt(x)[task].numpy(), expected[task].numpy(), rtol=1e-6)


def test_batch_normalized_backbones_run_in_both_modes():
    network = MultiTaskNetwork(PLE(TASKS, levels=2, expert_units=(4,)), TaskTowers(TASKS, (3,)))
    x = _x(batch=8)
    assert network(x, training=True)["a"].shape == (8,)
    assert network(x, training=False)["b"].shape == (8,)


def test_towers_can_read_another_tasks_representation():
    towers = TaskTowers(("a", "b", "a_aug"), (3,), sources={"a_aug": "a"}, **PLAIN)
    network = MultiTaskNetwork(MMoE(TASKS, 2, (4,), **PLAIN), towers)
    x = _x(batch=6)
    out = network.forward(x)
    np.testing.assert_array_equal(out.hidden["a_aug/representation"].numpy(), out.hidden["a/representation"].numpy())
    every = {v.name for v in network.trainable_variables}
    moved = _moved_by(network, "a_aug", x)
    assert _under(every, "/gate_a/") <= moved and not moved & _under(every, "/gate_b/")
    assert not moved & (_under(every, "/tower_a/") | _under(every, "/tower_b/"))


def test_bad_constructions_are_named():
    with pytest.raises(ValueError, match="distinct task names"):
        MMoE(("a", "a"))
    with pytest.raises(ValueError, match="reserves the name 'shared'"):
        PLE(("shared", "b"))
    with pytest.raises(ValueError, match="at least one expert"):
        PLE(TASKS, task_experts=0, shared_experts=0)
    with pytest.raises(ValueError, match=r"towers read task\(s\) \['c'\]"):
        MultiTaskNetwork(MMoE(TASKS), TaskTowers(("a", "c")))
    with pytest.raises(ValueError, match=r"sources for task\(s\) \['z'\] without a tower"):
        TaskTowers(TASKS, sources={"z": "a"})


def test_a_saved_model_reloads_as_the_same_multi_task_network(tmp_path):
    """Keras' SavedModel round trip (registered configs, no custom_objects), batch normalization included."""
    network = MultiTaskNetwork(PLE(TASKS, levels=2, expert_units=(4,)), TaskTowers(TASKS, (3,)))
    inputs = keras.Input([6])
    model = keras.Model(inputs, network(inputs))
    x = _x(batch=5)
    network(x, training=True)  # move the batch statistics off their start
    expected = model(x)
    model.save(str(tmp_path / "model"))
    reloaded = keras.models.load_model(str(tmp_path / "model"))
    assert isinstance(reloaded.layers[-1], MultiTaskNetwork) and isinstance(reloaded.layers[-1].backbone, PLE)
    for task in TASKS:
        np.testing.assert_allclose(reloaded(x)[task].numpy(), expected[task].numpy(), rtol=1e-5)
