"""The PFD paper's MTL baseline (Section 5.3): hard sharing of the first hidden layer, a 2-layer head per task,
MSE / log loss auxiliary tasks for the privileged features with their weights."""
from __future__ import annotations

import math

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf.multitask.mtl_baseline import AuxiliaryKind, AuxiliaryTask, build_mtl_baseline, mtl_baseline_losses
from pfd_tf.multitask.shared_bottom import SharedBottom

DWELL = AuxiliaryTask("dwell_time", AuxiliaryKind.REGRESSION, weight=0.5, center=3.0, scale=2.0)
COMMENTS = AuxiliaryTask("viewed_comments", "binary", weight=0.2)


def test_the_network_shares_one_hidden_layer_and_gives_each_task_a_two_layer_head():
    network = build_mtl_baseline("buy", [DWELL, COMMENTS], shared_units=(8,), head_units=(6, 4),
                                 normalization="none")
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32))
    out = network.forward(x)
    assert set(out.logits) == {"buy", "dwell_time", "viewed_comments"}
    assert isinstance(network.backbone, SharedBottom) and network.backbone.units == (8,)
    kernels = {v.name.split("multi_task_network")[-1]: tuple(v.shape) for v in network.trainable_variables
               if v.name.endswith("kernel:0")}
    shared = [shape for name, shape in kernels.items() if "/bottom/" in name]
    assert shared == [(7, 8)]
    for task in ("buy", "dwell_time", "viewed_comments"):
        head = [shape for name, shape in kernels.items() if f"/tower_{task}/" in name]
        assert head == [(8, 6), (6, 4), (4, 1)]  # two hidden layers, then the output
        np.testing.assert_array_equal(out.hidden[f"{task}/representation"].numpy(),
                                      out.hidden["buy/representation"].numpy())


def test_the_papers_defaults_are_512_then_256_128():
    network = build_mtl_baseline("buy", [DWELL])
    assert network.backbone.units == (512,)
    assert network.towers.units == (256, 128)


def test_losses_match_a_hand_computation():
    labels = {"buy": tf.constant([1.0, 0.0]), "dwell_time": tf.constant([5.0, 1.0]),
              "viewed_comments": tf.constant([0, 1])}
    outputs = {"buy": tf.constant([0.0, 2.0]), "dwell_time": tf.constant([1.5, 0.0]),
               "viewed_comments": tf.constant([-1.0, 1.0])}
    losses = mtl_baseline_losses(labels, outputs, "buy", [DWELL, COMMENTS])
    # buy: -ln s(0) = ln 2; -ln(1 - s(2)) = ln(1 + e^2); mean.
    buy = (math.log(2.0) + math.log1p(math.exp(2.0))) / 2
    # dwell standardized: (5 - 3) / 2 = 1, (1 - 3) / 2 = -1; squared errors (1.5 - 1)^2 = .25, (0 + 1)^2 = 1.
    dwell = (0.25 + 1.0) / 2
    # comments: label 0 at logit -1: ln(1 + e^-1); label 1 at logit 1: ln(1 + e^-1).
    comments = math.log1p(math.exp(-1.0))
    assert float(losses["loss_buy"]) == pytest.approx(buy, rel=1e-6)
    assert float(losses["loss_dwell_time"]) == pytest.approx(dwell, rel=1e-6)
    assert float(losses["loss_viewed_comments"]) == pytest.approx(comments, rel=1e-6)
    assert float(losses["loss"]) == pytest.approx(buy + 0.5 * dwell + 0.2 * comments, rel=1e-6)


def test_an_auxiliary_loss_moves_the_shared_layer_and_its_own_head_only():
    network = build_mtl_baseline("buy", [DWELL, COMMENTS], shared_units=(8,), head_units=(6, 4),
                                 normalization="none")
    x = tf.constant(np.random.default_rng(1).normal(size=(16, 7)).astype(np.float32))
    labels = {"buy": tf.zeros([16]), "dwell_time": tf.fill([16], 9.0), "viewed_comments": tf.ones([16])}
    with tf.GradientTape() as tape:
        losses = mtl_baseline_losses(labels, network(x), "buy", [DWELL, COMMENTS])
        dwell = losses["loss_dwell_time"]
    gradients = tape.gradient(dwell, network.trainable_variables)
    moved = {v.name for v, g in zip(network.trainable_variables, gradients) if g is not None and np.any(g.numpy())}
    every = {v.name for v in network.trainable_variables}
    assert moved == {n for n in every if "/bottom/" in n or "/tower_dwell_time/" in n}


def test_a_zero_weight_turns_an_auxiliary_task_off():
    off = AuxiliaryTask("dwell_time", weight=0.0)
    labels = {"buy": tf.constant([1.0]), "dwell_time": tf.constant([100.0])}
    outputs = {"buy": tf.constant([0.5]), "dwell_time": tf.constant([0.0])}
    losses = mtl_baseline_losses(labels, outputs, "buy", [off])
    assert float(losses["loss"]) == pytest.approx(float(losses["loss_buy"]))
    assert float(losses["loss_dwell_time"]) == pytest.approx(1e4)


def test_bad_auxiliary_tasks_are_named():
    with pytest.raises(ValueError, match="'dwell_time': weight must be >= 0"):
        AuxiliaryTask("dwell_time", weight=-1.0)
    with pytest.raises(ValueError, match="'dwell_time': scale must be > 0"):
        AuxiliaryTask("dwell_time", scale=0.0)
    with pytest.raises(ValueError):
        AuxiliaryTask("x", kind="ordinal")
    with pytest.raises(ValueError, match="distinct names"):
        build_mtl_baseline("buy", [AuxiliaryTask("buy")])
