"""Soft-label terms routed by task: `source_task` picks the teacher's task logit, `target_task` the student's head.

Naive cross-task distillation (Section 3.2 of "Cross-Task Knowledge
Distillation in Multi-Task Recommendation") on a two-task world: the
teacher's `cart` logit teaches the student's `buy` task and its `buy` logit
the student's `cart` task.  Each term's loss is Eq. (8) of Zhu et al. 2020 on
the named heads' logits, mixes with its target task's label loss only
(Eq. (7) of CrossDistil), and moves the target head and what it reads, never
the other task's head nor the teacher.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config.schema import ConfigError
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller
from pfd_tf.metrics import logloss_from_logits
from conftest import as_two_tasks
from test_terms import _soft_label_loss

TERMS = [{"kind": "soft_label", "weight": 0.3, "temperature": 2.0, "source_task": "cart", "target_task": "buy"},
         {"kind": "soft_label", "weight": 0.4, "source_task": "buy", "target_task": "cart"}]


def two_task_raw(tiny_config_path, terms=TERMS) -> dict:
    """The tiny world with two binary tasks (its `cart` column a label, no longer a feature) and `terms`."""
    raw = as_two_tasks(config_lib.load(tiny_config_path).to_dict())
    raw["distill"] = {"mode": "pfd", "terms": terms}
    return raw


@pytest.fixture(scope="module")
def setup(tiny_config_path):
    config = config_lib.from_dict(two_task_raw(tiny_config_path), os.path.dirname(tiny_config_path))
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    batch = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    return model, batch


def test_each_term_reads_the_source_task_and_trains_the_target_task(setup):
    model, (ids, labels) = setup
    out = {key: value.numpy() for key, value in model.compute_losses(ids, labels, training=False).items()}
    y = {name: value.numpy() for name, value in labels.items()}
    assert out["loss_distill_buy"] == pytest.approx(
        _soft_label_loss(out["teacher_cart_logits"], out["student_logits"], 2.0), rel=1e-5)
    assert out["loss_distill_cart"] == pytest.approx(
        _soft_label_loss(out["teacher_logits"], out["student_cart_logits"], 1.0), rel=1e-5)
    hard_buy = logloss_from_logits(y["buy"], out["student_logits"])
    hard_cart = logloss_from_logits(y["cart"], out["student_cart_logits"])
    # Eq. (7) per task: each term takes its weight from its own task's label loss.
    expected = out["loss_teacher"] + 0.7 * hard_buy + 0.3 * out["loss_distill_buy"] \
        + 0.6 * hard_cart + 0.4 * out["loss_distill_cart"]
    assert out["loss"] == pytest.approx(expected, rel=1e-5)


def test_each_term_moves_its_target_head_and_the_shared_body_never_the_other_head_nor_the_teacher(setup):
    model, (ids, labels) = setup
    groups = model.variable_groups()
    student = model.student
    cart_head = {v.ref() for v in student.task_heads.trainable_variables}
    served_logit = {v.ref() for v in student.trainable_variables if "/logit/" in v.name}
    assert len(cart_head) == 2 and len(served_logit) == 2
    with tf.GradientTape(persistent=True) as tape:
        out = model.compute_losses(ids, labels, training=True)
    for key, other_head in (("loss_distill_buy", cart_head), ("loss_distill_cart", served_logit)):
        assert model.loss_groups()[key] == frozenset({"student", "shared", "students_shared"})
        for group, variables in groups.items():
            moved = [v for v, g in zip(variables, tape.gradient(out[key], variables)) if g is not None]
            if group.startswith("teacher"):
                assert not moved, (key, group)
            elif group == "student":
                assert moved and not {v.ref() for v in moved} & other_head, key
                own = served_logit if other_head is cart_head else cart_head
                assert own <= {v.ref() for v in moved}, key
            elif group == "shared":
                assert moved, (key, group)  # the tables the student reads with the teacher


def test_a_term_naming_a_task_trains_through_fit(setup):
    model, batch = setup
    logs = model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), epochs=1, steps_per_epoch=2, verbose=0).history
    assert {"loss_distill_buy", "loss_distill_cart"} <= set(logs)
    assert all(np.isfinite(logs[key][-1]) for key in ("loss_distill_buy", "loss_distill_cart", "loss"))


@pytest.mark.parametrize("terms, message", [
    ([{**TERMS[0], "source_task": "click"}],
     r"^distill\.terms\[0\]\.source_task: no task 'click' \(tasks: buy, cart\)"),
    ([TERMS[1], {**TERMS[1], "weight": 0.1}], r"^distill\.terms\[1\]: a second soft_label term into student "
                                              r"'student' task 'cart' \(also distill\.terms\[0\]\)"),
    ([{**TERMS[1], "weight": 0.7}, {"kind": "soft_label", "weight": 0.5}],
     r"^distill\.terms: the terms with mix: true into student 'student' task 'cart' weigh 1\.2"),
    ([{"kind": "logit_matching", "weight": 0.1, "target_task": "cart"}],
     r"^distill\.terms\[0\]\.target_task: a logit_matching term reads and trains the served task"),
])
def test_a_bad_task_route_is_refused_naming_its_key(tiny_config_path, terms, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(two_task_raw(tiny_config_path, terms), os.path.dirname(tiny_config_path))
