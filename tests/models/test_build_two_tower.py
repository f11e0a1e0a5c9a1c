"""Wiring of a two-tower student, its teachers and the shared behaviour-sequence encoder."""
from __future__ import annotations

import os

import numpy as np

import pfd_tf  # noqa: F401
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.distill.build import build_distiller
from pfd_tf.models.ranker import Ranker
from pfd_tf.models.sequence import SequenceEmbedding
from pfd_tf.models.two_tower import TwoTowerRanker

TWO_TOWER = ["model.architecture=two_tower", "model.behaviour_items=[tags]", "model.user_tower=[16,8]",
             "model.item_tower=[16,8]", "model.attention_heads=2", "model.attention_head_dim=4"]
ITEM_SIDE = {"item_id", "price"}


def _config(path, *overrides):
    return config_lib.load(path, [*TWO_TOWER, *overrides])


def _names(layers):
    return {n for layer in layers for n in layer.feature_names}


def test_pfd_teacher_is_two_tower_with_privileged_features_on_the_user_side(tiny_config_path):
    model = build_distiller(_config(tiny_config_path))
    student, teacher = model.student, model.teacher
    assert isinstance(student, TwoTowerRanker) and isinstance(teacher, TwoTowerRanker)
    assert _names(student.item_inputs) == _names(teacher.item_inputs) == ITEM_SIDE
    assert _names(student.user_inputs) == {"user_id", "device", "tags"}
    assert _names(teacher.user_inputs) == {"user_id", "device", "tags", "dwell", "cart"}
    # One behaviour encoder, used by both networks (Share&Sync).
    (student_seq,) = [l for l in student.user_inputs if isinstance(l, SequenceEmbedding)]
    (teacher_seq,) = [l for l in teacher.user_inputs if isinstance(l, SequenceEmbedding)]
    assert student_seq is teacher_seq


def test_independent_sharing_gives_the_teacher_its_own_encoder(tiny_config_path):
    model = build_distiller(_config(tiny_config_path, "model.sharing=independent"))
    (student_seq,) = [l for l in model.student.user_inputs if isinstance(l, SequenceEmbedding)]
    (teacher_seq,) = [l for l in model.teacher.user_inputs if isinstance(l, SequenceEmbedding)]
    assert student_seq is not teacher_seq
    assert student_seq.tables["tags"] is not teacher_seq.tables["tags"]


def test_pfd_md_teacher_is_a_dnn_over_user_item_and_privileged_features(tiny_config_path):
    model = build_distiller(_config(tiny_config_path, "distill.mode=pfd_md"))
    assert isinstance(model.teacher, Ranker) and isinstance(model.student, TwoTowerRanker)
    assert set(model.teacher.feature_names) == {"user_id", "device", "tags", "item_id", "price", "dwell", "cart"}
    assert model.teacher.tower.units == (32, 16, 8)


def test_two_tower_student_trains_and_exports_to_the_same_scores(tiny_config_path, tmp_path):
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.evaluation import build_local_model
    from pfd_tf.trainer import train

    config = _config(tiny_config_path)
    metrics = train(config, str(tmp_path / "run"), verbose=0)
    assert metrics["steps"] == config.train.steps and metrics["teacher"] is not None

    model = build_local_model(config)
    tf.train.Checkpoint(model=model).read(metrics["checkpoint"]).expect_partial()
    ids, _ = next(iter(make_dataset_fn(config, "eval", 64, training=False)(None)))
    logits = model.student(ids, training=False).numpy()
    users = model.student.user_vectors(ids).numpy()
    items = model.student.item_vectors(ids).numpy()
    np.testing.assert_allclose(logits, 5.0 * np.sum(users * items, axis=1), rtol=1e-5, atol=1e-6)
    for name in ("student", "user_tower", "item_tower", "retrieval"):
        assert os.path.exists(tmp_path / "run" / "export" / name / "saved_model.pb"), name
    assert os.path.exists(tmp_path / "run" / "export" / "item_index.npz")


def test_retrieval_export_scores_are_scaled_inner_products_of_the_tower_exports(tiny_config_path, tmp_path):
    import csv
    import glob

    from pfd_tf.export_two_tower import export_two_tower, raw_columns
    from pfd_tf.trainer import train

    config = _config(tiny_config_path)
    metrics = train(config, str(tmp_path / "run"), verbose=0)
    item_files = sorted(glob.glob(config.resolve_path("train/*.csv")))
    paths = export_two_tower(config, metrics["checkpoint"], str(tmp_path / "export"), item_files, k=5)

    user_tower = tf.saved_model.load(paths["user_tower"]).signatures["serving_default"]
    item_tower = tf.saved_model.load(paths["item_tower"]).signatures["serving_default"]
    retrieval = tf.saved_model.load(paths["retrieval"]).signatures["serving_default"]
    privileged = {f.name for f in config.privileged_features}
    for signature in (user_tower, item_tower, retrieval):
        assert not set(signature.structured_input_signature[1]) & privileged
    assert set(item_tower.structured_input_signature[1]) == ITEM_SIDE
    assert set(retrieval.structured_input_signature[1]) == {"user_id", "device", "tags"}

    index = np.load(paths["item_index"])
    with open(item_files[0]) as f:
        rows = list(csv.DictReader(f))[:3]
    user_specs = [config.feature(n) for n in ("user_id", "device", "tags")]
    item_specs = [config.feature(n) for n in sorted(ITEM_SIDE)]
    users = raw_columns(user_specs, rows, "|")
    found = retrieval(**users)
    assert found["item_ids"].shape == (3, 5) and found["scores"].shape == (3, 5)
    user_vectors = user_tower(**users)["user_vector"].numpy()
    np.testing.assert_allclose(np.linalg.norm(user_vectors, axis=1), 1.0, rtol=1e-5)
    all_scores = user_vectors @ index["vectors"].T
    for r in range(3):
        ids = [i.decode() for i in found["item_ids"][r].numpy()]
        # The returned items are the top 5 of the whole index ...
        np.testing.assert_allclose(found["scores"][r].numpy(), np.sort(all_scores[r])[::-1][:5], rtol=1e-5, atol=1e-6)
        # ... and each score is 5 * <user_tower, item_tower> of that item, recomputed from its features.
        item_rows = [next(row for p in item_files for row in csv.DictReader(open(p)) if row["item_id"] == i)
                     for i in ids]
        item_vectors = item_tower(**raw_columns(item_specs, item_rows, "|"))["item_vector"].numpy()
        np.testing.assert_allclose(found["scores"][r].numpy(), 5.0 * item_vectors @ user_vectors[r], rtol=1e-4, atol=1e-5)


def test_the_shared_behaviour_encoder_runs_once_per_step_for_both_networks(tiny_config_path):
    from pfd_tf.data.pipeline import make_dataset_fn

    config = _config(tiny_config_path)
    model = build_distiller(config)
    (encoder,) = model.shared_inputs()
    assert isinstance(encoder, SequenceEmbedding)
    calls = []
    original = encoder.call
    encoder.call = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    ids, labels = next(iter(make_dataset_fn(config, "train", 32, training=True)(None)))
    with tf.GradientTape() as tape:
        out = model.compute_losses(ids, labels, training=True)
    assert len(calls) == 1
    # ... and both losses still reach it (Share&Sync): the teacher's through its user tower.
    for term in ("loss_student", "loss_teacher"):
        with tf.GradientTape() as tape:
            value = model.compute_losses(ids, labels, training=True)[term]
        grads = tape.gradient(value, encoder.encoder.trainable_variables)
        assert all(g is not None for g in grads), term
    independent = build_distiller(_config(tiny_config_path, "model.sharing=independent"))
    assert independent.shared_inputs() == []


def test_teacher_target_features_give_dnn_teachers_target_attention_and_never_the_student(tiny_config_path):
    from pfd_tf.models.target_attention import TargetAttention

    target = "model.teacher_target_features=[item_id]"
    for mode in ("pfd_md", "md"):
        model = build_distiller(_config(tiny_config_path, f"distill.mode={mode}", target))
        (attention,) = [l for l in model.teacher.input_layers if isinstance(l, TargetAttention)]
        assert attention.feature_names == ("tags", "item_id")
        # It reads the tables the student's encoder reads (Share&Sync).
        (student_seq,) = [l for l in model.student.user_inputs if isinstance(l, SequenceEmbedding)]
        assert attention.tables["tags"] is student_seq.tables["tags"]
        layers = model.student.user_inputs + model.student.item_inputs
        assert not any(isinstance(l, TargetAttention) for l in layers)
    # The PFD teacher is two-tower: no place for it.
    pfd = build_distiller(_config(tiny_config_path, "distill.mode=pfd", target))
    assert not any(isinstance(l, TargetAttention) for l in pfd.teacher.user_inputs + pfd.teacher.item_inputs)
