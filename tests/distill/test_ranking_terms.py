"""The ranking terms of `distill.terms` (`pfd_tf.distill.ranking_terms`): point-, pair- and list-wise
distillation over a batch's groups, through the Distiller.

One step's losses against values computed here in numpy from the step's own teacher and student logits and
the batch's groups (the survey of cascade distillation's three objectives, `pfd_tf.distill.ranking`); which
variable groups each term moves in a three-student cascade; the config's refusals.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError
from pfd_tf.distill import routing
from pfd_tf.names import DEFAULT_TASK, GROUP
from pfd_tf.trainer import build_and_compile

from test_routing import _batch, _cascade_raw, _moved

TERMS = [{"kind": "listwise_softmax", "weight": 0.4, "temperature": 2.0},
         {"kind": "pairwise_bpr", "weight": 0.3, "margin": 0.05},
         {"kind": "pointwise_top_k", "weight": 0.2, "k": 2}]
GROUPS = np.array([0, 0, 1, 0, 1, 2, 1, 0], np.int32)  # a list's rows need not be adjacent; list 2 has one row


def _raw(terms) -> dict:
    raw = _cascade_raw()
    raw["students"] = raw["students"][:1]
    raw["data"]["group_by"] = ["user_id"]
    raw["train"]["embedding_l2"] = 0.0
    raw["distill"] = {"terms": terms}
    return raw


def _lists(groups, values):
    return [values[groups == g] for g in np.unique(groups)]


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _listwise(t, s, groups, tau):
    losses = []
    for tl, sl in zip(_lists(groups, t), _lists(groups, s)):
        p = np.exp(tl / tau) / np.exp(tl / tau).sum()
        log_q = sl / tau - np.log(np.exp(sl / tau).sum())
        losses.append(-(p * log_q).sum())
    return tau**2 * np.mean(losses)


def _bpr(t, s, groups, margin):
    losses = [_softplus(-(sl[i] - sl[j])) for tl, sl in zip(_lists(groups, t), _lists(groups, s))
              for i in range(len(tl)) for j in range(len(tl)) if tl[i] > tl[j] + margin]
    return np.mean(losses)


def _top_k(t, s, groups, k):
    losses = []
    for tl, sl in zip(_lists(groups, t), _lists(groups, s)):
        for i in range(len(tl)):
            y = float((tl > tl[i]).sum() < k)
            losses.append(_softplus(sl[i]) - y * sl[i])  # log loss with logits
    return np.mean(losses)


def test_one_steps_ranking_losses_are_the_hand_computed_ones_and_add_to_the_loss():
    distiller = build_and_compile(config_lib.from_dict(_raw(TERMS)), tf.distribute.get_strategy())
    ids, labels = _batch()
    out = distiller.compute_losses(ids, {DEFAULT_TASK: labels, GROUP: tf.constant(GROUPS)}, training=True)
    t, s = out["co_logits"].numpy(), out["student_logits"].numpy()
    assert len(set(np.round(t, 6))) == len(t)  # no ties: the hand values' pairs and top-k are the step's
    np.testing.assert_allclose(out["loss_listwise_softmax"], _listwise(t, s, GROUPS, 2.0), rtol=1e-5)
    np.testing.assert_allclose(out["loss_pairwise_bpr"], _bpr(t, s, GROUPS, 0.05), rtol=1e-5)
    np.testing.assert_allclose(out["loss_pointwise_top_k"], _top_k(t, s, GROUPS, 2), rtol=1e-5)
    # Not mixing (the default): added on top of the whole label loss, each with its weight.
    total = (out["loss_co"] + out["loss_student"] + 0.4 * out["loss_listwise_softmax"]
             + 0.3 * out["loss_pairwise_bpr"] + 0.2 * out["loss_pointwise_top_k"])
    np.testing.assert_allclose(float(out["loss"]), float(total), rtol=1e-6)


def test_a_batch_without_groups_is_refused_naming_the_key():
    distiller = build_and_compile(config_lib.from_dict(_raw(TERMS[:1])), tf.distribute.get_strategy())
    ids, labels = _batch()
    with pytest.raises(ValueError, match="listwise_softmax compares scores within lists.*data.group_by"):
        distiller.compute_losses(ids, {DEFAULT_TASK: labels}, training=True)


def test_ranking_terms_into_two_students_move_only_that_student_and_the_tables():
    """A retrieval two-tower student and a DAGFM ranker, each distilled by a ranking term: each term moves its
    own student and the shared tables, never the other student nor the teacher."""
    raw = _cascade_raw()
    raw["data"]["group_by"] = ["user_id"]
    raw["distill"] = {"terms": [{"kind": "soft_label", "weight": 0.5},
                                {"kind": "listwise_softmax", "weight": 0.5, "student": "retrieval"},
                                {"kind": "pairwise_bpr", "weight": 0.5, "student": "ranker"},
                                {"kind": "pointwise_top_k", "weight": 0.5, "student": "student", "k": 3}]}
    distiller = build_and_compile(config_lib.from_dict(raw), tf.distribute.get_strategy())
    groups, allowed = distiller.variable_groups(), distiller.loss_groups()
    ids, labels = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = distiller.compute_losses(ids, {DEFAULT_TASK: labels, GROUP: tf.constant(GROUPS)}, training=True)
    owner = {"loss_listwise_softmax_retrieval": "retrieval", "loss_pairwise_bpr_ranker": "ranker",
             "loss_pointwise_top_k": "student"}
    for loss, student in owner.items():
        assert allowed[loss] == routing.student_loss_groups(student)
        moved = {group for group, variables in groups.items() if _moved(tape, out[loss], variables)}
        assert moved == {routing.student_group(student), routing.SHARED}, (loss, moved)


@pytest.mark.parametrize("term, data, message", [
    ({"kind": "pairwise_bpr", "weight": 0.1}, {}, r"distill.terms\[1\].kind: pairwise_bpr compares scores within "
                                                  "a list.*data.group_by"),
    ({"kind": "pointwise_top_k", "weight": 0.1, "k": 0}, {"group_by": ["user_id"]}, r"distill.terms\[1\].k: must "
                                                                                    "be >= 1"),
    ({"kind": "pairwise_bpr", "weight": 0.1, "margin": -1}, {"group_by": ["user_id"]}, r"\.margin: must be >= 0"),
    ({"kind": "listwise_softmax", "weight": 0.1, "temperature": 0}, {"group_by": ["user_id"]},
     r"\.temperature: must be positive"),
    ({"kind": "pairwise_bpr", "weight": 0.1, "k": 2}, {"group_by": ["user_id"]},
     r"distill.terms\[1\].k: a key of pointwise_top_k terms, not of pairwise_bpr"),
])
def test_bad_ranking_terms_are_refused_naming_the_key(term, data, message):
    raw = _raw([{"kind": "soft_label", "weight": 0.5}, term])
    raw["data"].pop("group_by")
    raw["data"].update(data)
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(copy.deepcopy(raw))


def test_a_batch_of_empty_groups_is_no_step_and_a_real_one_counts_its_rows_and_groups():
    """A grouped cluster run ends with batches of empty groups (pfd_tf.cluster.grouped_service's padding): such a
    batch moves no variable, not even the optimizer's step count; a real one counts its 8 rows and 3 groups."""
    distiller = build_and_compile(config_lib.from_dict(_raw(TERMS)), tf.distribute.get_strategy())
    ids, labels = _batch()
    step = tf.function(distiller.train_step)
    step((ids, {DEFAULT_TASK: labels, GROUP: tf.constant(GROUPS)}))
    assert (int(distiller.optimizer.iterations), int(distiller.trained_rows), int(distiller.trained_groups)) == (1, 8, 3)
    before = [v.numpy().copy() for v in distiller.variables + distiller.optimizer.variables]
    empty = ({name: value[:0] for name, value in ids.items()}, {DEFAULT_TASK: labels[:0], GROUP: tf.constant(GROUPS[:0])})
    step(empty)
    after = [v.numpy() for v in distiller.variables + distiller.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert (int(distiller.optimizer.iterations), int(distiller.trained_rows), int(distiller.trained_groups)) == (1, 8, 3)
