"""The zoo's networks: logits composed as Eq. (1)-(4) of Zhu et al. 2020 say, and every model builds and learns."""
from __future__ import annotations

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf.config import FeatureKind, FeatureSpec, ModelConfig, NetworkConfig, NumericEncoding, Normalization, ZooModel
from pfd_tf.config.networks import hidden_names
from pfd_tf.models.build import dummy_ids
from pfd_tf.models.embedding import build_tables
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.towers import DenseBatchNorm
from pfd_tf.models.zoo import NEEDS_FIRST_ORDER, NEEDS_STACK, ZooNetwork, build_linear_tables, build_network
from pfd_tf.models.zoo import registry

ZOO = [m for m in ZooModel if m not in (ZooModel.DNN, ZooModel.TWO_TOWER)]
NO_DNN_PART = (ZooModel.LR, ZooModel.FM, ZooModel.DAGFM)
# The multi-task backbones: their experts are MLPs too, and their `final` is the served task's tower's.
BACKBONES = tuple(m for m in ZOO if registry.get(m).multi_task)
SMALL = dict(cross_layers=2, cross_rank=2, cin_layers=(4, 3), attention_layers=2, attention_heads=2,
             attention_dim=2, senet_reduction=2, dagfm_layers=2)

# --- a 2-field, dim-2 example with every weight set by hand ------------------------------------------

A = FeatureSpec(name="a", kind=FeatureKind.CATEGORICAL, dim=2, hash_buckets=3)
B = FeatureSpec(name="b", kind=FeatureKind.CATEGORICAL, dim=2, hash_buckets=3)
IDS = {"a": tf.constant([0, 2], tf.int64), "b": tf.constant([1, 0], tf.int64)}
EMB_A = np.array([[1.0, 2.0], [0.0, -1.0], [-0.5, 3.0]], np.float32)
EMB_B = np.array([[2.0, -1.0], [0.5, 0.5], [1.0, 1.0]], np.float32)
LIN_A = np.array([[0.1], [0.2], [0.3]], np.float32)
LIN_B = np.array([[-1.0], [0.4], [0.0]], np.float32)
VA, VB = EMB_A[[0, 2]], EMB_B[[1, 0]]  # the rows IDS pick: [B, 2] each
FIRST = LIN_A[[0, 2], 0] + LIN_B[[1, 0], 0]
X0 = np.concatenate([VA, VB], axis=-1)  # the concatenated vector [B, 4]
ALPHA = 0.01  # ModelConfig's default LeakyReLU slope


def _leaky(x):
    return np.where(x > 0, x, ALPHA * x)


def _hand_network(kind: ZooModel, tower=(2,), **sizes) -> ZooNetwork:
    tables, linear = build_tables([A, B]), build_linear_tables([A, B])
    network = build_network(NetworkConfig(model=kind, **sizes), ModelConfig(), [A, B], tables, linear, tower, "net")
    network(dummy_ids([A, B]))
    tables["a"].embeddings.assign(EMB_A)
    tables["b"].embeddings.assign(EMB_B)
    if kind in NEEDS_FIRST_ORDER:  # the others never read (so never build) the linear tables
        linear["a"].embeddings.assign(LIN_A)
        linear["b"].embeddings.assign(LIN_B)
    return network


def _set_deep(network, w0, b0):
    network.body.deep.hidden[0].set_weights([w0, b0])
    return _leaky(X0 @ w0 + b0)


W0 = np.array([[0.5, -1.0], [0.2, 0.3], [-0.4, 0.1], [1.0, 0.5]], np.float32)
B0 = np.array([0.1, -0.2], np.float32)


def test_lr_logit_is_the_bias_plus_the_first_order_weights():
    network = _hand_network(ZooModel.LR)
    network.body.bias.bias.assign(0.5)
    out = network.forward(IDS)
    np.testing.assert_allclose(out.logits.numpy(), 0.5 + FIRST, rtol=1e-6)  # [0.1 + 0.4, 0.3 - 1.0] + 0.5
    np.testing.assert_allclose(out.hidden["final"].numpy(), X0)  # LR's `final`: the concatenated vector


def test_fm_logit_adds_the_inner_product_of_the_two_fields():
    network = _hand_network(ZooModel.FM)
    network.body.bias.bias.assign(-0.25)
    out = network.forward(IDS)
    pairwise = np.sum(VA * VB, axis=-1)  # two fields: sum_{i<j} <v_i, v_j> = <v_a, v_b> = [1.5, -3.5]
    np.testing.assert_allclose(out.hidden["fm"].numpy()[:, 0], pairwise, rtol=1e-6)
    np.testing.assert_allclose(out.logits.numpy(), -0.25 + FIRST + pairwise, rtol=1e-6)
    np.testing.assert_allclose(out.hidden["final"].numpy(), X0)  # the stack flattened


def test_wide_deep_logit_is_the_first_order_plus_the_dnn_logit():
    network = _hand_network(ZooModel.WIDE_DEEP)
    deep = _set_deep(network, W0, B0)
    network.body.logit.set_weights([np.array([[2.0], [-1.0]], np.float32), np.array([0.3], np.float32)])
    out = network.forward(IDS)
    np.testing.assert_allclose(out.logits.numpy(), FIRST + deep @ [2.0, -1.0] + 0.3, rtol=1e-5)
    np.testing.assert_allclose(out.hidden["final"].numpy(), deep, rtol=1e-5)


def test_deepfm_logit_is_the_sum_of_first_order_fm_and_dnn_logits():
    network = _hand_network(ZooModel.DEEPFM)
    deep = _set_deep(network, W0, B0)
    network.body.logit.set_weights([np.array([[2.0], [-1.0]], np.float32), np.array([0.3], np.float32)])
    out = network.forward(IDS)
    first, fm, dnn = FIRST, np.sum(VA * VB, axis=-1), deep @ [2.0, -1.0] + 0.3
    np.testing.assert_allclose(out.logits.numpy(), first + fm + dnn, rtol=1e-5)  # Eq. (2): phi_FM + phi_DNN
    np.testing.assert_allclose(out.hidden["fm"].numpy()[:, 0], fm, rtol=1e-6)
    np.testing.assert_allclose(out.hidden["deep_0"].numpy(), deep, rtol=1e-5)
    assert out.hidden["final"] is out.hidden["deep_0"]


@pytest.mark.parametrize("kind", [ZooModel.DCN, ZooModel.DCN_V2])
def test_dcn_logit_reads_the_cross_and_the_deep_outputs_concatenated(kind):
    network = _hand_network(kind, cross_layers=1, cross_rank=1)
    deep = _set_deep(network, W0, B0)
    w = np.array([[0.1, 0.0, 0.2, -0.1], [0.0, 0.3, 0.0, 0.1], [0.2, -0.2, 0.1, 0.0], [0.0, 0.1, 0.0, 0.4]],
                 np.float32)
    b = np.array([0.1, 0.0, -0.1, 0.2], np.float32)
    if kind is ZooModel.DCN:
        network.body.cross[0].set_weights([w, b])
    else:  # rank 1: W = u v
        u, v = np.array([[1.0], [0.5], [-1.0], [0.0]], np.float32), np.array([[0.2, -0.1, 0.3, 0.1]], np.float32)
        network.body.cross[0].set_weights([u, v, b])
        w = u @ v
    cross = X0 * (X0 @ w + b) + X0
    head = np.array([[1.0], [-1.0], [0.5], [0.0], [2.0], [0.25]], np.float32)
    network.body.logit.set_weights([head, np.array([-0.1], np.float32)])
    out = network.forward(IDS)
    final = np.concatenate([cross, deep], axis=-1)
    np.testing.assert_allclose(out.hidden["cross"].numpy(), cross, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.hidden["final"].numpy(), final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.logits.numpy(), final @ head[:, 0] - 0.1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ZOO)
def test_the_first_order_part_is_in_the_logit_of_exactly_the_models_that_declare_it(kind):
    network = _hand_network(kind, **SMALL)
    before = network(IDS).numpy()
    if kind in NEEDS_FIRST_ORDER:
        for table in network.linear_tables.values():
            table.embeddings.assign_add(tf.fill(table.embeddings.shape, 0.5))
        np.testing.assert_allclose(network(IDS).numpy(), before + 2 * 0.5, rtol=1e-5, atol=1e-5)
    else:
        assert network.linear_tables == {}


@pytest.mark.parametrize("kind", [m for m in ZOO if m not in (ZooModel.LR, ZooModel.FM)])
def test_final_is_the_input_of_the_logit_layer_and_the_other_summands_add_to_it(kind):
    network = _hand_network(kind, **SMALL)
    out = network.forward(IDS)
    kernel, bias = network.body.logit.get_weights()
    expected = out.hidden["final"].numpy() @ kernel[:, 0] + bias[0]
    if kind in NEEDS_FIRST_ORDER:
        expected += FIRST
    if kind is ZooModel.DEEPFM:
        expected += out.hidden["fm"].numpy()[:, 0]
    if kind is ZooModel.XDEEPFM:  # Eq. (4): phi_CIN, its own Dense(1) without a bias
        (cin_kernel,) = network.body.cin_logit.get_weights()
        expected += out.hidden["cin"].numpy() @ cin_kernel[:, 0]
    np.testing.assert_allclose(out.logits.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ZOO)
def test_an_empty_tower_leaves_the_interaction_part_or_the_fields_as_final(kind):
    out = _hand_network(kind, tower=(), **SMALL).forward(IDS)
    assert sorted(out.hidden) == sorted(hidden_names(kind, ()))
    assert not any(name.startswith("deep_") for name in out.hidden)
    if kind in (ZooModel.DCN, ZooModel.DCN_V2):
        assert out.hidden["final"] is out.hidden["cross"]
    elif kind is ZooModel.AUTOINT:
        assert out.hidden["final"] is out.hidden["attention"]
    elif kind is ZooModel.FIBINET:
        assert out.hidden["final"] is out.hidden["bilinear"]
    elif kind is ZooModel.DAGFM:  # no DNN part: the pooled node states of its 2 + 1 layers, 2 fields each
        assert out.hidden["final"].shape == (2, 6)
    elif kind in BACKBONES:  # a tower of no layers reads the backbone's representation of the served task
        assert out.hidden["final"] is out.hidden["representation"]
    else:
        np.testing.assert_allclose(out.hidden["final"].numpy(), X0)


# --- every model: builds, names its hidden outputs, creates its variables at once, learns ------------

USER = FeatureSpec(name="user", kind=FeatureKind.CATEGORICAL, dim=4, hash_buckets=4)
ITEM = FeatureSpec(name="item", kind=FeatureKind.CATEGORICAL, dim=4, hash_buckets=5)
TAGS = FeatureSpec(name="tags", kind=FeatureKind.SEQUENCE, dim=4, hash_buckets=6, max_len=3)
PRICE = FeatureSpec(name="price", kind=FeatureKind.NUMERIC, dim=4, encoding=NumericEncoding.VALUE, std=1.0)
FEATURES = [USER, ITEM, TAGS, PRICE]


def _problem(rows=64, seed=0):
    """Ids of every kind, and a label the user id decides (any model, LR included, can learn it)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 4, rows)
    ids = {
        "user": tf.constant(users, tf.int64),
        "item": tf.constant(rng.integers(0, 5, rows), tf.int64),
        "tags": tf.constant(rng.integers(0, 6, (rows, 3)), tf.int64),
        "price": tf.constant(rng.normal(size=rows), tf.float32),
    }
    return ids, tf.constant((users >= 2).astype(np.float32))


def _network(kind: ZooModel, normalization=Normalization.NONE, tower=(8, 4), name="net") -> ZooNetwork:
    network = build_network(NetworkConfig(model=kind, **SMALL), ModelConfig(normalization=normalization), FEATURES,
                            build_tables(FEATURES), build_linear_tables(FEATURES), tower, name)
    network(dummy_ids(FEATURES), training=False)
    return network


def _loss(network, ids, labels, training):
    logits = network(ids, training=training)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))


@pytest.mark.parametrize("kind", ZOO)
def test_every_model_builds_names_its_hidden_outputs_and_learns(kind):
    network = _network(kind)
    names = sorted(v.name for v in network.variables)
    ids, labels = _problem()

    out = network.forward(ids, training=False)
    assert out.logits.shape == (64,)
    assert "final" in out.hidden
    for name, value in out.hidden.items():
        assert value.shape.rank == 2 and value.shape[0] == 64, name
    # What the config checks a hint's layer names against (pfd_tf.config.networks.hidden_names), exactly.
    assert sorted(out.hidden) == sorted(hidden_names(kind, (8, 4)))
    deep = sorted(n for n in out.hidden if n.startswith("deep_"))
    assert deep == ([] if kind in NO_DNN_PART else ["deep_0", "deep_1"])

    # Every trainable variable gets a gradient (LR's label loss never reads the embedding tables).
    with tf.GradientTape() as tape:
        loss = _loss(network, ids, labels, training=True)
    grads = tape.gradient(loss, network.trainable_variables)
    unread = {v.name for v, g in zip(network.trainable_variables, grads) if g is None}
    expected_unread = {t.embeddings.name for t in network.tables.values()} if kind is ZooModel.LR else set()
    assert unread == expected_unread

    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = _loss(network, ids, labels, training=True)
        variables = network.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return loss

    initial = float(_loss(network, ids, labels, training=False))
    for _ in range(25):
        step()
    final = float(_loss(network, ids, labels, training=False))
    assert final < 0.7 * initial, (initial, final)
    assert sorted(v.name for v in network.variables) == names  # nothing created after the first call


@pytest.mark.parametrize("kind", ZOO)
def test_batch_normalization_variant_builds_and_runs_both_modes(kind):
    network = _network(kind, Normalization.BATCH)
    count = len(network.variables)
    ids, _ = _problem(rows=8)
    assert network(ids, training=True).shape == (8,)
    assert network(ids, training=False).shape == (8,)
    assert len(network.variables) == count
    norms = [layer for layer in network.submodules if isinstance(layer, DenseBatchNorm)]
    if kind in BACKBONES:  # the tower's two layers and the experts' (at least one each)
        assert len(norms) > 2
    else:
        assert len(norms) == (0 if kind in NO_DNN_PART else 2)
    assert all(float(layer.moving_updates) == 1.0 for layer in norms)


def test_checkpoints_reach_the_tables_and_the_first_order_tables(tmp_path):
    network = _network(ZooModel.DEEPFM)
    variables = {v.ref() for v in network.variables}
    for table in list(network.tables.values()) + list(network.linear_tables.values()):
        assert table.embeddings.ref() in variables
    path = tf.train.Checkpoint(network=network).write(str(tmp_path / "ckpt"))
    saved = [name for name, _ in tf.train.list_variables(path) if "embeddings" in name]
    assert len(saved) == 2 * len(FEATURES)
    assert network.feature_names == ("user", "item", "tags", "price") and network.all_input_layers == []
    with pytest.raises(NotImplementedError):
        network.get_config()


def test_networks_reading_shared_tables_through_one_bank_look_each_table_up_once():
    tables, linear = build_tables(FEATURES), build_linear_tables(FEATURES)
    teacher = build_network(NetworkConfig(model=ZooModel.XDEEPFM, **SMALL), ModelConfig(), FEATURES, tables, linear,
                            (8,), "teacher")
    student = build_network(NetworkConfig(model=ZooModel.DCN, **SMALL), ModelConfig(), FEATURES, tables, {},
                            (8,), "student")
    ids, _ = _problem(rows=4)
    bank = FeatureBank(ids)
    teacher.forward(ids, bank=bank)
    student.forward(ids, bank=bank)
    assert len(bank.trainable_rows()) == 2 * len(FEATURES)  # each embedding and linear table once
    assert student.tables["user"] is teacher.tables["user"]


# --- what build_network refuses ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NEEDS_STACK, key=lambda m: m.value))
def test_a_stack_of_unequal_embedding_sizes_is_refused_by_name(kind):
    wide = FeatureSpec(name="wide", kind=FeatureKind.CATEGORICAL, dim=3, hash_buckets=3)
    features = [A, wide]
    with pytest.raises(ValueError, match=r"needs equal embedding sizes, got a=2, wide=3"):
        build_network(NetworkConfig(model=kind), ModelConfig(), features, build_tables(features),
                      build_linear_tables(features), (4,), "net")


def test_models_reading_only_the_vector_accept_unequal_embedding_sizes():
    wide = FeatureSpec(name="wide", kind=FeatureKind.CATEGORICAL, dim=3, hash_buckets=3)
    features = [A, wide]
    network = build_network(NetworkConfig(model=ZooModel.DCN, cross_layers=1), ModelConfig(), features,
                            build_tables(features), {}, (4,), "net")
    assert network.forward(dummy_ids(features)).hidden["cross"].shape == (2, 5)


@pytest.mark.parametrize("kind", [ZooModel.DNN, ZooModel.TWO_TOWER])
def test_dnn_and_two_tower_are_not_built_by_the_zoo(kind):
    with pytest.raises(ValueError, match="not built by the zoo"):
        build_network(NetworkConfig(model=kind), ModelConfig(), [A], build_tables([A]), {}, (4,), "net")


def test_a_first_order_model_without_linear_tables_is_refused():
    with pytest.raises(ValueError, match="needs a linear table for every feature; none for 'a'"):
        build_network(NetworkConfig(model=ZooModel.WIDE_DEEP), ModelConfig(), [A, B], build_tables([A, B]), {},
                      (4,), "net")
    with pytest.raises(ValueError, match="no embedding table for feature 'b'"):
        build_network(NetworkConfig(model=ZooModel.DCN), ModelConfig(), [A, B], build_tables([A]), {}, (4,), "net")
