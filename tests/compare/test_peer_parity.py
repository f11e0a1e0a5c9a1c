"""pfd_tf's zoo models compute what DeepCTR 0.9.4's counterparts compute, given the same weights.

Both are built over one ensemble world (`benchmarks/peer_zoo.counterpart`), every weight of DeepCTR's is set
to the one pfd_tf's holds (drawn large, so every part counts), and one batch goes through both: the logits
and the gradients of the mean log loss must agree.  pfd_tf's DNN part runs with `model.leaky_relu_alpha=0`,
i.e. ReLU, DeepCTR's activation (pfd_tf's default slope, 0.01, is the one place they differ).  What is left
for the parity table (docs/results.md) is then training, not the models.  DeepCTR is the optional `peer`
extra: these tests skip without it.
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow, so before DeepCTR)
from pfd_tf._keras import keras, tf
from pfd_tf.datasets.scenarios import SCENARIOS
from pfd_tf.models.build import build_student

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "benchmarks")


@pytest.fixture(scope="module")
def peer_modules():
    pytest.importorskip("deepctr")
    sys.path.insert(0, BENCHMARKS)
    try:
        return importlib.import_module("peer_baseline"), importlib.import_module("peer_zoo")
    finally:
        sys.path.remove(BENCHMARKS)


def deepctr_name(name: str) -> str:
    """pfd_tf's variable name -> DeepCTR's for the same weight (AutoInt+, DeepFM, WDL, DCN)."""
    name = name.split("/", 1)[1]  # without the network's scope, `student/`
    table, _, rest = name.partition("/")
    if table.startswith("cross_"):
        return f"cross_net/{'kernel' if 'kernel' in rest else 'bias'}{table.split('_')[1]}:0"
    if table.startswith("linear_"):
        return f"linear0sparse_emb_{table[len('linear_'):]}/embeddings:0"
    if table.startswith("embedding_"):
        return f"sparse_emb_{table[len('embedding_'):]}/embeddings:0"
    if table.startswith("interacting_"):
        index = int(table.split("_")[1])
        return f"interacting_layer{'_' + str(index) if index else ''}/{rest.replace('residual', 'res')}"
    return {"deep/dense_0/kernel:0": "dnn/kernel0:0", "deep/dense_0/bias:0": "dnn/bias0:0",
            "deep/dense_1/kernel:0": "dnn/kernel1:0", "deep/dense_1/bias:0": "dnn/bias1:0",
            "logit/kernel:0": "dense/kernel:0", "logit/bias:0": "prediction_layer/global_bias:0"}[name]


def as_deepctrs(name: str, value: np.ndarray, shape) -> np.ndarray:
    """pfd_tf's value of a weight as DeepCTR holds it: a cross kernel transposed (DeepCTR's CrossNet computes
    W x_l, a Keras Dense x_l K), a cross bias as a column."""
    return value.T if "/cross_" in name and "kernel" in name else value.reshape(shape)


@pytest.mark.parametrize("model", ["autoint", "deepfm", "wide_deep", "dcn"])
def test_with_deepctrs_weights_the_logits_and_gradients_are_deepctrs(peer_modules, tmp_path, model):
    bench, zoo = peer_modules
    path = SCENARIOS["ensemble"](str(tmp_path), seed=0, rows=400)
    config = bench.peer_config(path, [f"student.model={model}", "model.student_tower=[8,4]",
                                      "student.cross_layers=2", "student.attention_layers=2", "student.attention_dim=3",
                                      "model.leaky_relu_alpha=0"])
    inputs, labels = bench.peer_inputs(config, "train")
    batch = {name: values[:64] for name, values in inputs.items()}
    ids = {name: tf.constant(values.reshape(-1), tf.int64) for name, values in batch.items()}
    keras.backend.clear_session()  # DeepCTR's layer names (`dnn`, `dense`) without a `_1`
    keras.utils.set_random_seed(0)
    ours = build_student(config)
    ours(ids, training=False)  # its weights
    theirs = zoo.counterpart(model, zoo.peer_columns(bench.import_deepctr(), config), config.student, (8, 4))
    logits_of, prediction = zoo.logit_model(theirs)
    logit_dense = [layer for layer in theirs.layers if type(layer).__name__ == "Dense"][-1]  # `dense`, or `dense_2`
    if model in ("autoint", "dcn"):  # no first-order part: DeepCTR's zero linear logit is a [1, 1] constant
        logits_of = keras.Model(theirs.inputs, logit_dense.output)  # read before it
    theirs_by_name = {v.name: v for v in theirs.trainable_variables}
    rng = np.random.default_rng(1)
    pairs = []
    for variable in ours.trainable_variables:
        value = rng.normal(0.0, 0.3, variable.shape).astype(np.float32)
        twin = theirs_by_name.pop(deepctr_name(variable.name).replace("dense/", f"{logit_dense.name}/"))
        variable.assign(value)
        twin.assign(as_deepctrs(variable.name, value, twin.shape))
        pairs.append((variable, twin))
    assert not theirs_by_name, sorted(theirs_by_name)  # every weight of DeepCTR's has its twin in pfd_tf's
    their_ids = [tf.constant(batch[name]) for name in theirs.input_names]
    y = tf.constant(labels[:64])

    @tf.function
    def losses_and_gradients():
        with tf.GradientTape(persistent=True) as tape:
            our_logits = ours(ids, training=True)
            their_logits = tf.reshape(logits_of(their_ids, training=True), [-1]) + prediction.global_bias[0]
            our_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, our_logits))
            their_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, their_logits))
        return (our_logits, their_logits, tape.gradient(our_loss, [p[0] for p in pairs]),
                tape.gradient(their_loss, [p[1] for p in pairs]))

    our_logits, their_logits, our_grads, their_grads = losses_and_gradients()
    assert float(tf.math.reduce_std(their_logits)) > 0.1  # the weights drawn move the logits
    np.testing.assert_allclose(our_logits.numpy(), their_logits.numpy(), rtol=1e-5, atol=1e-5)
    for (variable, _), ours_grad, theirs_grad in zip(pairs, our_grads, their_grads):
        ours_grad = tf.convert_to_tensor(ours_grad).numpy()
        np.testing.assert_allclose(as_deepctrs(variable.name, ours_grad, theirs_grad.shape),
                                   tf.convert_to_tensor(theirs_grad).numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=variable.name)


def test_deepctrs_tables_start_alike_unless_drawn_independently(peer_modules, tmp_path):
    """DeepCTR starts every table from seed 2020, so row k of every field starts as the same vector, and
    every run from the same weights; `--peer-tables independent` keeps N(0, 1e-4^2) and draws each table
    from its own seed (another start of DeepCTR's model, docs/results.md)."""
    bench, zoo = peer_modules
    path = SCENARIOS["ensemble"](str(tmp_path), seed=0, rows=400)
    config = bench.peer_config(path, ["model.student_tower=[4]"])
    peer = bench.import_deepctr()
    for independent in (False, True):
        keras.backend.clear_session()
        model = zoo.peer_dnn(peer, zoo.peer_columns(peer, config, independent), (4,))[0]
        first = [v.numpy()[:2] for v in model.trainable_variables if "sparse_emb_" in v.name]
        assert len(first) == len(config.student_features)
        same = [np.array_equal(first[0], rows) for rows in first[1:]]
        assert all(same) if not independent else not any(same)
        assert 2e-5 < float(np.std(np.concatenate(first))) < 3e-4  # N(0, 1e-4^2) either way
