"""FLOPs and parameters of serving functions, against counts by hand (`pfd_tf.flops`, `pfd_tf.cost_report`)."""
from __future__ import annotations


import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.cost_report import example_batch, exports, measure_export, parameters
from pfd_tf.flops import count_flops, einsum_flops, serving_flops
from pfd_tf.models.zoo.layers import DAGFMPropagation


class TinyRanker(tf.Module):
    """Raw columns `c` (a string, hashed into 10 buckets, 2-wide embedding) and `x` (a number) ->
    Dense(4, relu) -> Dense(1) -> sigmoid, served like an exported student."""

    def __init__(self):
        super().__init__()
        self.table = keras.layers.Embedding(10, 2, name="embedding_c")
        self.hidden = keras.layers.Dense(4, activation="relu", name="hidden")
        self.logit = keras.layers.Dense(1, name="logit")
        signature = {"c": tf.TensorSpec([None], tf.string, name="c"), "x": tf.TensorSpec([None], tf.float32, name="x")}
        self.serve = tf.function(self._serve, input_signature=[signature])

    def _serve(self, features):
        ids = tf.strings.to_hash_bucket_fast(features["c"], 10)
        vector = tf.concat([self.table(ids), tf.reshape(features["x"], [-1, 1])], axis=1)  # [B, 3]
        logits = tf.squeeze(self.logit(self.hidden(vector)), -1)
        return {"probability": tf.sigmoid(logits), "logit": logits}


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run")
    module = TinyRanker()
    path = str(model_dir / "export" / "student")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve.get_concrete_function()})
    return str(model_dir), path


def test_a_dense_stack_export_has_the_flops_and_parameters_counted_by_hand(tiny_export):
    model_dir, path = tiny_export
    assert exports(model_dir) == {"student": path}
    cost = measure_export(path, batches=(1, 3), warmup=1, repeats=2)
    # Embedding 10 x 2; Dense 3 -> 4 (12 + 4), Dense 4 -> 1 (4 + 1).
    assert cost["params"] == {"embedding": 20, "other": 21, "total": 41}
    # Per example: MatMul 2*3*4 + 2*4*1 = 32, BiasAdd 4 + 1, Relu 4, Sigmoid 1; hashing and lookups cost none.
    assert cost["flops"]["by_op"] == {"MatMul": 32, "BiasAdd": 5, "Relu": 4, "Sigmoid": 1}
    assert (cost["flops"]["per_example"], cost["flops"]["per_call"], cost["flops"]["batch_1"]) == (42, 0, 42)
    assert cost["flops"]["uncounted"] == {}
    for batch in (1, 3):
        timing = cost["latency"][str(batch)]
        assert (timing["batch"], timing["warmup"], timing["calls"]) == (batch, 1, 2)
        assert timing["ms_per_example"] == pytest.approx(timing["median_ms_per_call"] / batch) and timing["ms_per_example"] > 0


def test_flops_grow_with_the_batch_and_a_variable_read_once_counts_once():
    module = TinyRanker()
    function = module.serve.get_concrete_function()
    assert [count_flops(function, b).total for b in (1, 2, 5)] == [42, 84, 210]
    assert parameters(list(function.variables) + list(function.variables))["total"] == 41
    statistics = tf.Variable(tf.zeros([5]), trainable=False, name="moving_mean")
    frozen = keras.layers.Dense(2, name="frozen")
    frozen.build([None, 3])
    frozen.trainable = False  # a frozen (pre-trained) teacher's weights are still its parameters
    assert parameters([statistics, *frozen.variables]) == {"embedding": 0, "other": 8, "total": 8}


@pytest.mark.parametrize("interaction", ["inner", "outer"])
def test_dagfm_flops_per_example_and_per_call(interaction):
    m, d, depth = 5, 3, 2
    layer = DAGFMPropagation(interaction, depth)
    function = tf.function(lambda stack: layer(stack)[1]).get_concrete_function(tf.TensorSpec([None, m, d]))
    flops = serving_flops(function)
    edges = 2 * m * m * d * (1 if interaction == "inner" else 2)  # a [B, m] x [m, m] product per coordinate
    # h0 = C e (2 m^2 d), each layer its edges and h0 * messages (m d), the sums over d of K + 1 layers.
    assert flops["per_example"] == 2 * m * m * d + depth * (edges + m * d) + (depth + 1) * m * d
    assert flops["per_call"] == depth * m * m * d  # masking the edge weights, once per call


def test_einsum_rule():
    assert einsum_flops("bfd,fsd->bsd", [[2, 3, 4], [3, 5, 4]]) == 2 * 2 * 3 * 4 * 5  # f summed: multiply-adds
    assert einsum_flops("bd,bd->bd", [[2, 4], [2, 4]]) == 8  # nothing summed: one multiply each
    assert einsum_flops("bd,d->bd", [[2, 4], [1]]) == 8  # a broadcast 1 takes the other's size
    assert einsum_flops("ij->i", [[3, 4]]) == 12 and einsum_flops("ij->ji", [[3, 4]]) == 0
    assert einsum_flops("bf,fs->bs", [[2, None], [3, 5]]) == 2 * 2 * 3 * 5  # an unknown size the other fixes
    assert einsum_flops("bf,fs->bs", [[2, None], [None, 5]]) is None
    assert einsum_flops("...f,fs->...s", [[2, 3], [3, 5]]) is None


def test_an_inner_size_shape_inference_leaves_unknown_is_taken_from_the_other_factor():
    weights = tf.constant(np.ones((3, 2), np.float32))
    function = tf.function(lambda x: tf.matmul(x, weights)).get_concrete_function(tf.TensorSpec([None, None]))
    assert count_flops(function, 1).by_op == {"MatMul": 2 * 1 * 3 * 2}


def test_an_op_of_no_known_cost_is_listed_not_guessed():
    function = tf.function(lambda x: tf.math.lgamma(x) + x).get_concrete_function(tf.TensorSpec([None, 4]))
    count = count_flops(function, 2)
    assert count.uncounted == {"Lgamma": 1} and count.by_op == {"AddV2": 8}


def test_an_example_batch_follows_the_signature():
    specs = {"c": tf.TensorSpec([None], tf.string, name="c"), "tags": tf.TensorSpec([None, 4], tf.string, name="tags"),
             "x": tf.TensorSpec([None], tf.float32, name="x")}
    batch = example_batch(specs, 3)
    assert batch["tags"].shape == (3, 4) and batch["tags"].dtype == tf.string and batch["c"].numpy().tolist() == [b"1"] * 3
    np.testing.assert_array_equal(batch["x"].numpy(), [1.0, 1.0, 1.0])
