"""One lookup per table per step: the FeatureBank's fields, and the lookups a PFD step really makes."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import FeatureKind, FeatureSpec
from pfd_tf.features import PAD_ID, vocabulary_size
from pfd_tf.datasets import ctr
from pfd_tf.distill.build import build_distiller
from pfd_tf.models.embedding import FeatureEmbedding, build_tables
from pfd_tf.models.feature_bank import FeatureBank
from pfd_tf.models.sequence import SequenceEmbedding
from pfd_tf.models.target_attention import TargetAttention

# --- the bank on hand-set tables ---------------------------------------------------------------------

USER = FeatureSpec(name="user_id", kind=FeatureKind.CATEGORICAL, dim=2, hash_buckets=4)
TAGS = FeatureSpec(name="tags", kind=FeatureKind.SEQUENCE, dim=2, hash_buckets=4, max_len=3)
PRICE = FeatureSpec(name="price", kind=FeatureKind.NUMERIC, dim=3, boundaries=(1.0, 2.0))
IDS = {"user_id": [1, 3], "tags": [[1, 2, 0], [0, 0, 0]], "price": [0, 2]}


def _ids(rows=IDS):
    return {name: tf.constant(value, tf.int64) for name, value in rows.items()}


def _tables(specs=(USER, TAGS, PRICE)):
    """Tables whose row r of feature f holds (10 * f + r, -r, ...): every entry known by hand."""
    tables = build_tables(specs)
    for f, (name, table) in enumerate(tables.items()):
        table(tf.constant([0], tf.int64))  # creates the weights
        rows, dim = table.embeddings.shape
        weights = np.zeros((rows, dim), np.float32)
        weights[:, 0] = 10 * f + np.arange(rows)
        weights[:, 1] = -np.arange(rows)
        table.embeddings.assign(weights)
    return tables


def test_stack_is_the_per_field_vectors_and_pools_sequences_over_non_padding():
    tables = _tables()
    stack = FeatureBank(_ids()).stack([USER, TAGS], tables).numpy()
    assert stack.shape == (2, 2, 2)  # [batch, fields, dim]
    # user_id rows 1 and 3 of table 0; tags rows 1 and 2 (of table 1) averaged, and an all-padding row -> 0.
    np.testing.assert_allclose(stack[:, 0], [[1.0, -1.0], [3.0, -3.0]])
    np.testing.assert_allclose(stack[:, 1], [[11.5, -1.5], [0.0, 0.0]])


def test_pooled_fields_equal_what_feature_embedding_outputs():
    tables = _tables()
    bank = FeatureBank(_ids())
    expected = FeatureEmbedding([USER, TAGS, PRICE], tables)(_ids()).numpy()
    np.testing.assert_allclose(bank.vector([USER, TAGS, PRICE], tables).numpy(), expected)
    np.testing.assert_allclose(bank.stack([USER, TAGS], tables).numpy().reshape(2, 4), expected[:, :4])
    # The price row is looked up unpooled: numeric ids index the bucket (0 and 2 of table 2).
    np.testing.assert_allclose(expected[:, 4:], [[20.0, 0.0, 0.0], [22.0, -2.0, 0.0]])


def test_stack_of_unequal_dims_is_an_error_that_names_them():
    tables = _tables()
    with pytest.raises(ValueError, match="user_id=2, price=3"):
        FeatureBank(_ids()).stack([USER, PRICE], tables)


def test_rows_are_memoized_per_feature_and_table():
    tables = _tables()
    private = _tables([USER])["user_id"]  # another table for the same feature (Share*&Sync)
    bank = FeatureBank(_ids())
    first = bank.embedding("user_id", tables["user_id"])
    assert bank.embedding("user_id", tables["user_id"]) is first
    assert bank.field(USER, tables["user_id"]) is first
    other = bank.embedding("user_id", private)
    assert other is not first
    assert bank.embedding("user_id", private) is other


# --- lookups in one PFD step ---------------------------------------------------------------------------

SMALL_CTR = ["distill.mode=pfd_md", "model.user_tower=[8]", "model.item_tower=[8]", "model.student_tower=[8]",
             "model.teacher_tower=[8]", "model.big_teacher_tower=[8]", "model.attention_heads=1",
             "model.attention_head_dim=4", "model.teacher_target_features=[item_id,category_id,shop_id]"]


def _batch(config, size: int = 16, seed: int = 0):
    """(ids, labels) of `size` random rows over every feature of `config`; sequences padded at the end.

    Made here, not by the input pipeline, so these tests check the models alone.
    """
    rng = np.random.default_rng(seed)
    ids = {}
    for spec in config.features:
        rows = vocabulary_size(spec)
        if spec.kind is FeatureKind.SEQUENCE:
            values = rng.integers(1, rows, (size, spec.max_len))
            lengths = rng.integers(0, spec.max_len + 1, size)
            values[np.arange(spec.max_len)[None, :] >= lengths[:, None]] = PAD_ID
        else:
            values = rng.integers(0, rows, size)
        ids[spec.name] = tf.constant(values, tf.int64)
    return ids, tf.constant(rng.integers(0, 2, size), tf.float32)


@pytest.fixture(scope="module")
def ctr_config_path(tmp_path_factory):
    """A tiny CTR world: a two-tower Share*&Sync student with a behaviour encoder, a DNN teacher with target attention."""
    return ctr.generate_ctr(str(tmp_path_factory.mktemp("ctr")), rows=400, seed=0, days=2)


@pytest.fixture(params=["mlp_pfd", "student_private_user_id", "ctr_sequence_and_target_attention"])
def world(request, tiny_config_path, ctr_config_path):
    """(name, model, batch) of one config; weights created, SGD compiled."""
    if request.param == "mlp_pfd":
        config = config_lib.load(tiny_config_path)
    elif request.param == "student_private_user_id":
        config = config_lib.load(tiny_config_path, ["model.student_private_features=[user_id]"])
    else:
        config = config_lib.load(ctr_config_path, SMALL_CTR)
    keras.utils.set_random_seed(0)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return request.param, model, _batch(config)


@pytest.fixture
def lookups(monkeypatch):
    """Counts `keras.layers.Embedding.call`, i.e. real table lookups, by table name."""
    counts = collections.Counter()
    original = keras.layers.Embedding.call

    def counting(self, inputs):
        counts[self.name] += 1
        return original(self, inputs)

    monkeypatch.setattr(keras.layers.Embedding, "call", counting)
    return counts


def _tables_read(model) -> dict:
    """Name -> table, over every table the student and the teacher read."""
    tables = {id(t): t for net in (model.student, model.teacher) for t in net.tables.values()}
    by_name = {t.name: t for t in tables.values()}
    assert len(by_name) == len(tables)  # the names tell the tables apart
    return by_name


def test_one_pfd_step_looks_every_table_up_once(world, lookups):
    name, model, batch = world
    tables = _tables_read(model)
    model.train_step(batch)  # eagerly: one step of Algorithm 1, gradients applied
    assert dict(lookups) == {table: 1 for table in tables}
    if name == "student_private_user_id":
        assert {"student_embedding_user_id", "embedding_user_id"} <= set(lookups)
    if name == "ctr_sequence_and_target_attention":
        (attention,) = [l for l in model.teacher.input_layers if isinstance(l, TargetAttention)]
        (encoder,) = model.shared_inputs()
        assert isinstance(encoder, SequenceEmbedding)
        # The teacher's target attention reads the behaviour and item tables the student's layers read.
        assert set(attention.feature_names) <= set(model.student.tables)
        assert all(attention.tables[n] is model.student.tables[n] for n in attention.feature_names)
        assert "embedding_hist_item_id" in lookups and "embedding_item_id" in lookups
    lookups.clear()
    model.compute_losses(*batch, training=False)  # the evaluation step too
    assert dict(lookups) == {table: 1 for table in tables}
    lookups.clear()
    # Traced, as fit runs it: the memo works at trace time, so the graph holds one lookup per table.
    tf.function(lambda ids, labels: model.compute_losses(ids, labels, training=True)["loss"])(*batch)
    assert dict(lookups) == {table: 1 for table in tables}


def test_the_shared_behaviour_encoder_runs_once_in_a_step(ctr_config_path):
    config = config_lib.load(ctr_config_path, SMALL_CTR)
    model = build_distiller(config)
    batch = _batch(config)
    (encoder,) = model.shared_inputs()
    calls = []
    original = encoder.encoder.call
    encoder.encoder.call = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    model.compute_losses(*batch, training=True)
    assert len(calls) == 1


@pytest.mark.parametrize("training", [False, True])
def test_logits_through_one_bank_equal_fresh_lookups_per_network(world, training):
    _, model, (ids, labels) = world
    out = model.compute_losses(ids, labels, training=training)
    # Each network alone, over its own fresh bank.
    student = model.student(ids, training=training).numpy()
    teacher = model.teacher(ids, training=training).numpy()
    np.testing.assert_allclose(out["student_logits"].numpy(), student, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["teacher_logits"].numpy(), teacher, rtol=1e-6, atol=1e-6)
