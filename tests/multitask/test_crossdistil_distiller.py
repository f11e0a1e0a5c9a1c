"""CrossDistil wired into the Distiller (`distill.crossdistil`, `pfd_tf.distill.crossdistil_part`).

A DNN student with two task heads (`buy`, `cart`) on the tiny world carries
the augmented tasks buy+ and cart+ and their Platt scaling.  Checked here:
one step's losses against Eq. (4)-(10) computed by hand from the step's
logits; L^Cal moves only P, Q and L^Model never moves them; the error
correction never reaches the teacher's (augmented heads') gradient; one
`fit` step moves P, Q by SGD at gamma_2 on L^Cal; a batch lacking a label
combination gives a finite loss; bad sections are refused naming the key.
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
from pfd_tf.multitask.quadruplets import FIRST, SECOND, augmented_ranking_loss, sample_quadruplets, step_seed

SECTION = {"alpha": 0.4, "margin": 0.5, "temperature": 2.0, "beta1": 1.0, "beta2": 0.5, "ranking_weight": 0.8,
           "calibration_learning_rate": 0.1}


def crossdistil_raw(tiny_config_path, section=SECTION, **distill) -> dict:
    """The tiny world with two binary tasks (`cart` a label, no longer a feature), CrossDistil on the student."""
    raw = as_two_tasks(config_lib.load(tiny_config_path).to_dict())
    raw["distill"] = {"mode": "baseline", "crossdistil": section, **distill}
    return raw


def _model(tiny_config_path, section=SECTION):
    config = config_lib.from_dict(crossdistil_raw(tiny_config_path, section), os.path.dirname(tiny_config_path))
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return config, model


@pytest.fixture(scope="module")
def setup(tiny_config_path):
    config, model = _model(tiny_config_path)
    model.crossdistil.platt["buy"].p.assign(1.5)  # away from the identity, so that calibration shows
    model.crossdistil.platt["cart"].q.assign(-0.3)
    batch = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    return model, batch


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _ce(p, z):
    """mean CE(p, sigmoid(z)) = mean of max(z, 0) - z p + log(1 + e^-|z|)."""
    return np.mean(np.maximum(z, 0) - z * p + np.log1p(np.exp(-np.abs(z))))


def test_one_steps_losses_are_eq4_to_eq10_by_hand(setup):
    model, (ids, labels) = setup
    out = {key: value.numpy() for key, value in model.compute_losses(ids, labels, training=False).items()}
    y = {name: value.numpy() for name, value in labels.items()}
    student = {"buy": out["student_logits"], "cart": out["student_cart_logits"]}
    platt = {name: (float(layer.p.numpy()), float(layer.q.numpy())) for name, layer in model.crossdistil.platt.items()}
    quadruplets = sample_quadruplets(labels["buy"], labels["cart"], step_seed(0, 0))
    expected_model, expected_calibration = 0.0, 0.0
    for name, role in (("buy", FIRST), ("cart", SECOND)):
        r = out[f"student_{name}_augmented_logits"]
        p, q = platt[name]
        calibrated = p * r + q  # Eq. (8)
        sign = np.where(y[name] > 0.5, 1.0, -1.0)
        corrected = sign * np.maximum(sign * calibrated, 0.5)  # Eq. (10), m = 0.5
        distill = _ce(_sigmoid(corrected / 2.0), student[name] / 2.0)  # Eq. (6), tau = 2, no tau^2
        assert out[f"loss_{name}_distill"] == pytest.approx(distill, rel=1e-5)
        hard = logloss_from_logits(y[name], student[name])
        ranking = float(augmented_ranking_loss(tf.constant(r), quadruplets, role, 1.0, 0.5))
        assert out[f"loss_{name}_ranking"] == pytest.approx(ranking, rel=1e-5) and ranking > 0
        expected_model += 0.6 * hard + 0.4 * distill + 0.8 * ranking  # Eq. (7) + Algorithm 1, line 10
        calibration = logloss_from_logits(y[name], calibrated)  # Eq. (9)
        assert out[f"loss_{name}_calibration"] == pytest.approx(calibration, rel=1e-5)
        expected_calibration += calibration
    assert out["loss"] == pytest.approx(expected_model, rel=1e-5)
    assert out["loss_calibration"] == pytest.approx(expected_calibration, rel=1e-5)
    assert out["loss_student"] == pytest.approx(logloss_from_logits(y["buy"], student["buy"])
                                                + logloss_from_logits(y["cart"], student["cart"]), rel=1e-5)


def test_the_calibration_loss_moves_only_p_q_and_the_model_loss_never_p_q_nor_by_error_correction(setup):
    model, (ids, labels) = setup
    part = model.crossdistil
    omega = [v.ref() for layer in part.platt.values() for v in layer.trainable_variables]
    heads = [v for head in part.augmented.values() for v in head.trainable_variables]
    assert len(omega) == 4 and len(heads) == 4
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        out = model.compute_losses(ids, labels, training=True)
        ranking = 0.8 * (out["loss_buy_ranking"] + out["loss_cart_ranking"])
    calibration = tape.gradient(out["loss_calibration"], variables)
    assert {v.ref() for v, g in zip(variables, calibration) if g is not None} == set(omega)
    model_grads = tape.gradient(out["loss"], variables)
    moved = {v.ref() for v, g in zip(variables, model_grads) if g is not None}
    assert not moved & set(omega)
    assert {v.ref() for v in model.student.trainable_variables} <= moved  # the body and both task heads
    # The teacher (augmented heads) learns from its ranking loss only: distillation, calibration and the
    # correction of Eq. (10) never reach it.
    for g_all, g_rank in zip(tape.gradient(out["loss"], heads), tape.gradient(ranking, heads)):
        np.testing.assert_allclose(g_all.numpy(), g_rank.numpy(), rtol=1e-5, atol=1e-7)
    for name in ("buy", "cart"):
        assert all(g is None for g in tape.gradient(out[f"loss_{name}_distill"], heads + [v.deref() for v in omega]))


def test_one_fit_step_moves_theta_by_the_models_optimizer_and_p_q_by_sgd_at_gamma_2(tiny_config_path):
    config, model = _model(tiny_config_path)
    ids, labels = next(iter(make_dataset_fn(config, "train", 64, training=True)(None)))
    platt = model.crossdistil.platt["cart"]
    with tf.GradientTape() as tape:
        calibration = model.compute_losses(ids, labels, training=True)["loss_calibration"]
    dp, dq = tape.gradient(calibration, [platt.p, platt.q])
    head = model.student.task_heads.heads["cart"].kernel
    before = head.numpy().copy()
    logs = model.fit(tf.data.Dataset.from_tensors((ids, labels)), epochs=1, steps_per_epoch=1, verbose=0).history
    assert float(platt.p.numpy()) == pytest.approx(1.0 - 0.1 * float(dp), rel=1e-5)
    assert float(platt.q.numpy()) == pytest.approx(0.0 - 0.1 * float(dq), rel=1e-5, abs=1e-7)
    assert not np.array_equal(head.numpy(), before)
    assert int(model.optimizer.iterations.numpy()) == 1 and int(model.calibration_optimizer.iterations.numpy()) == 1
    assert {"loss_crossdistil", "loss_calibration", "loss_buy_ranking", "loss_cart_distill",
            "student_buy_augmented_auc", "student_cart_augmented_auc"} <= set(logs)


def test_a_batch_lacking_a_label_combination_gives_a_finite_loss(setup):
    model, (ids, labels) = setup
    no_cart = {"buy": labels["buy"], "cart": tf.zeros_like(labels["cart"])}  # no x_{++}, no x_{-+}, no x_{.+}
    out = model.compute_losses(ids, no_cart, training=True)
    assert np.isfinite(float(out["loss"])) and np.isfinite(float(out["loss_calibration"]))
    # B+ keeps only its beta2 pair x_{+-} > x_{--} (Eq. (4)); the pairs needing a cart-positive row drop out.
    draws = sample_quadruplets(no_cart["buy"], no_cart["cart"], step_seed(0, 0))
    assert [float(draws.present[key]) for key in ("++", "-+", ".+", "+-", "--")] == [0, 0, 0, 1, 1]
    r = out["student_cart_augmented_logits"].numpy()
    higher, lower = r[draws.indices["+-"].numpy()], r[draws.indices["--"].numpy()]
    assert float(out["loss_cart_ranking"]) == pytest.approx(0.5 * np.mean(np.log1p(np.exp(lower - higher))),
                                                            rel=1e-5)


@pytest.mark.parametrize("section, distill, message", [
    ({"tasks": ["buy", "click"]}, {}, r"^distill\.crossdistil\.tasks: no task 'click' \(tasks: buy, cart\)"),
    ({"tasks": ["buy", "buy"]}, {}, r"^distill\.crossdistil\.tasks: two distinct tasks"),
    ({"alpha": 1.5}, {}, r"^distill\.crossdistil\.alpha: must be in \[0, 1\]"),
    ({"beta1": -1.0}, {}, r"^distill\.crossdistil\.beta1: must be >= 0"),
    ({"calibration_learning_rate": 0.0}, {}, r"^distill\.crossdistil\.calibration_learning_rate: must be positive"),
    ({"gamma": 1.0}, {}, r"^distill\.crossdistil\.gamma: unknown key"),
    ({}, {"mode": "pfd"}, r"^distill\.crossdistil: the augmented tasks of the student are CrossDistil's teachers"),
])
def test_a_bad_section_is_refused_naming_its_key(tiny_config_path, section, distill, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(crossdistil_raw(tiny_config_path, section, **distill), os.path.dirname(tiny_config_path))


def test_the_section_round_trips_and_a_config_without_it_is_written_as_before(tiny_config_path):
    config = config_lib.from_dict(crossdistil_raw(tiny_config_path), os.path.dirname(tiny_config_path))
    assert config.to_dict()["distill"]["crossdistil"]["margin"] == 0.5
    assert config_lib.from_dict(config.to_dict(), config.base_dir) == config
    assert "crossdistil" not in config_lib.load(tiny_config_path).to_dict()["distill"]
