"""`distill.terms`: the distillation terms as a list, the shorthand keys that expand into it, and its checks.

The shorthand (`distill.lambda`, `temperature`, `swap_step`, `hint_*`) and
the list it stands for build the same distiller: the same losses on a step
and the same weights after training.  The losses are checked against hand
values of Eq. (5) of the PFD paper with the hint and logit-matching terms
added (Zhu et al. 2020, Eq. (7)-(9); KD-DAGFM).
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, TermConfig, TermSchedule, expand_terms
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.distill.build import build_distiller

from conftest import write_tiny_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORTHAND = {"mode": "pfd", "lambda": 0.3, "temperature": 2.0, "swap_step": 2, "hint_weight": 0.1}
LIST = {"mode": "pfd", "terms": [
    {"kind": "soft_label", "weight": 0.3, "temperature": 2.0, "schedule": {"start_step": 2}},
    {"kind": "hint", "weight": 0.1, "schedule": {"start_step": 2}}]}


def _raw(path: str, distill: dict, **train) -> dict:
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["distill"] = distill
    raw["train"].update(train)
    return raw


def _config(path: str, distill: dict, **train) -> config_lib.Config:
    return config_lib.from_dict(_raw(path, distill, **train), os.path.dirname(path))


def _model(config):
    keras.utils.set_random_seed(1)
    model = build_distiller(config)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _soft_label_loss(teacher_logits, student_logits, tau):
    """tau^2 * mean cross entropy of sigmoid(z_S / tau) against sigmoid(z_T / tau), in numpy."""
    p, z = 1 / (1 + np.exp(-teacher_logits / tau)), student_logits / tau
    return tau**2 * np.mean(np.maximum(z, 0) - z * p + np.log1p(np.exp(-np.abs(z))))


@pytest.fixture(scope="module")
def batches(tiny_config_path):
    config = config_lib.load(tiny_config_path)
    return list(make_dataset_fn(config, "train", 64, training=True)(None).take(4))


def test_the_shorthand_expands_into_the_list_it_stands_for(tiny_config_path):
    short, listed = _config(tiny_config_path, SHORTHAND), _config(tiny_config_path, LIST)
    assert short.distill.terms == ()  # the config keeps what was written
    assert expand_terms(short.distill, ("teacher",)) == listed.distill.terms
    assert expand_terms(listed.distill, ("teacher",)) == listed.distill.terms
    assert listed.distill.terms[1] == TermConfig("hint", 0.1, mix=False, schedule=TermSchedule(2))
    assert expand_terms(short.distill, ()) == ()  # no teacher, no term (the baseline)


def test_shorthand_and_list_give_the_same_losses_and_the_same_trained_weights(tiny_config_path, batches):
    short, listed = _model(_config(tiny_config_path, SHORTHAND)), _model(_config(tiny_config_path, LIST))
    ids, labels = batches[0]
    for step in range(4):  # steps 0, 1 before the terms' start step 2; 2, 3 after
        a = short.compute_losses(ids, labels, training=False)
        b = listed.compute_losses(ids, labels, training=False)
        assert set(a) == set(b) and {"loss_distill", "loss_hint", "lambda"} <= set(a)
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
        on = step >= 2  # hand values of Eq. (5) plus the hint: the weights switch on at the start step
        v = {key: a[key].numpy() for key in a}
        assert v["lambda"] == (0.3 if on else 0.0)
        assert v["loss_distill"] == pytest.approx(_soft_label_loss(v["teacher_logits"], v["student_logits"], 2.0),
                                                  rel=1e-5)
        expected = v["loss_teacher"] + (0.7 if on else 1.0) * v["loss_student"] + (
            0.3 * v["loss_distill"] + 0.1 * v["loss_hint"] if on else 0.0)
        assert v["loss"] == pytest.approx(expected, rel=1e-6)
        short.train_step(batches[step])
        listed.train_step(batches[step])
    assert len(short.weights) == len(listed.weights)
    for x, y in zip(short.weights, listed.weights):
        assert x.name == y.name
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.name)


def test_mixing_terms_share_the_label_losss_weight_and_a_named_teacher_is_read(tiny_config_path, batches):
    """Soft label 0.3 and logit matching 0.2, both mixing: the label loss weighs 1 - 0.5 (Eq. (5))."""
    distill = {"mode": "pfd", "terms": [{"kind": "soft_label", "weight": 0.3},
                                        {"kind": "logit_matching", "weight": 0.2, "teacher": "teacher"}]}
    model = _model(_config(tiny_config_path, distill))
    out = {key: value.numpy() for key, value in model.compute_losses(*batches[0], training=False).items()}
    assert out["lambda"] == pytest.approx(0.5)
    assert out["loss_logit_matching"] == pytest.approx(
        np.mean((out["teacher_logits"] - out["student_logits"]) ** 2), rel=1e-5)
    assert out["loss_distill"] == pytest.approx(_soft_label_loss(out["teacher_logits"], out["student_logits"], 1.0),
                                                rel=1e-5)
    expected = out["loss_teacher"] + 0.5 * out["loss_student"] + 0.3 * out["loss_distill"] \
        + 0.2 * out["loss_logit_matching"]
    assert out["loss"] == pytest.approx(expected, rel=1e-6)
    logs = model.fit(tf.data.Dataset.from_tensors(batches[1]).repeat(2), epochs=1, steps_per_epoch=2,
                     verbose=0).history
    assert {"loss_distill", "loss_logit_matching", "lambda"} <= set(logs)


SOFT, HINT, MATCH = {"kind": "soft_label", "weight": 0.5}, {"kind": "hint", "weight": 0.1}, \
    {"kind": "logit_matching", "weight": 0.1}


@pytest.mark.parametrize("terms, extra, message", [
    ([{"kind": "pairwise", "weight": 1.0}], {}, r"^distill\.terms\[0\]\.kind: unknown value 'pairwise'"),
    ([{"weight": 1.0}], {}, r"^distill\.terms\[0\]\.kind: required key is missing"),
    ([SOFT, HINT, {**MATCH, "teacher": "nobody"}], {}, r"^distill\.terms\[2\]\.teacher: no teacher 'nobody'"),
    ([{**SOFT, "student": "small"}], {}, r"^distill\.terms\[0\]\.student: no student 'small'"),
    ([{**HINT, "temperature": 2.0}], {}, r"^distill\.terms\[0\]\.temperature: a key of soft_label and listwise_softmax terms, not of hint"),
    ([{**SOFT, "lamda": 0.5}], {}, r"^distill\.terms\[0\]\.lamda: unknown key"),
    ([{**SOFT, "weight": -0.5}], {}, r"^distill\.terms\[0\]\.weight: must be >= 0"),
    ([{"kind": "soft_label"}], {}, r"^distill\.terms\[0\]\.weight: required key is missing"),
    ([SOFT], {"lambda": 0.3}, r"^distill\.terms and distill\.lambda: both set"),
    ([SOFT], {"hint_weight": 0.1}, r"^distill\.terms and distill\.hint_weight: both set"),
    ([{**SOFT, "weight": 0.7}, {**MATCH, "weight": 0.5}], {}, r"^distill\.terms: the terms with mix: true into "
                                                                r"student 'student' weigh 1\.2"),
    ([SOFT, {**SOFT, "weight": 0.1}], {}, r"^distill\.terms\[1\]: a second soft_label term into student 'student' "
                                          r"\(also distill\.terms\[0\]\)"),
    ([{**SOFT, "source_task": "buy"}], {}, r"^distill\.terms\[0\]\.source_task: no task 'buy' \(tasks: main\)"),
    ([{**HINT, "teacher_layer": "nowhere"}], {}, r"^distill\.terms\[0\]\.teacher_layer: teacher 'teacher' \(dnn\) "
                                                 r"has no hidden output 'nowhere'"),
    ([{**SOFT, "temperature": 0.0}], {}, r"^distill\.terms\[0\]\.temperature: must be positive"),
    ([{**SOFT, "schedule": {"start_fraction": 1.5}}], {}, r"^distill\.terms\[0\]\.schedule\.start_fraction: a "
                                                           r"fraction of the run's steps"),
    ([{**SOFT, "schedule": {"start_step": 3, "start_fraction": 0.5}}], {},
     r"^distill\.terms\[0\]\.schedule\.start_fraction: set the start by start_step or by start_fraction"),
    ([SOFT, {**MATCH, "schedule": {"start_step": 12}}], {},
     r"^distill\.terms\[1\]\.schedule\.start_step: 12 is at or past the run's end \(train\.steps: 12 steps\)"),
    ([{**SOFT, "schedule": {"begin": 3}}], {}, r"^distill\.terms\[0\]\.schedule\.begin: unknown key"),
    ([SOFT], {"mode": "baseline"}, r"^distill\.terms: a distillation term needs a teacher"),
    ("soft_label", {}, r"^distill\.terms: expected a list of terms"),
    (["soft_label"], {}, r"^distill\.terms\[0\]: expected a mapping"),
])
def test_each_bad_term_is_refused_naming_its_key(tiny_config_path, terms, extra, message):
    with pytest.raises(ConfigError, match=message):
        _config(tiny_config_path, {"mode": "pfd", "terms": terms, **extra})


def test_early_stopping_by_distillation_needs_a_soft_label_term(tiny_config_path):
    raw = _raw(tiny_config_path, {"mode": "pfd", "terms": [MATCH]}, early_stopping="distillation")
    raw["data"]["validation_files"] = ["test/*.csv"]
    with pytest.raises(ConfigError, match=r"^train\.early_stopping: distillation scores the served student's "
                                          r"soft-label loss; distill\.terms has no soft_label term"):
        config_lib.from_dict(raw, os.path.dirname(tiny_config_path))
    raw["distill"]["terms"].append(SOFT)
    config_lib.from_dict(raw, os.path.dirname(tiny_config_path))


def test_the_list_round_trips_and_a_shorthand_config_is_written_as_before(tiny_config_path):
    listed = _config(tiny_config_path, {"mode": "pfd", "terms": [
        {"kind": "soft_label", "weight": 0.3, "schedule": {"start_fraction": 0.25}}, MATCH]})
    written = listed.to_dict()["distill"]
    assert "lambda" not in written and "hint_weight" not in written  # the shorthand is not written beside a list
    assert written["terms"][1] == {"kind": "logit_matching", "weight": 0.1, "teacher": "", "student": "student",
                                   "source_task": "", "target_task": "", "mix": True,
                                   "schedule": {"start_step": 0, "start_fraction": 0.0}}
    assert config_lib.from_dict(listed.to_dict(), listed.base_dir) == listed
    resolved = config_lib.resolve_length(listed, 1000)  # 12 steps: the start fraction becomes a start step
    assert resolved.distill.terms[0].schedule == TermSchedule(start_step=3)
    short = _config(tiny_config_path, SHORTHAND)
    assert "terms" not in short.to_dict()["distill"]  # config.yaml and its fingerprint as before the list existed


def test_a_term_list_trains_from_yaml_through_the_cli(tmp_path):
    """Soft label + logit matching + hint from a config file, through `python -m pfd_tf.cli.train` (about 20 s: a
    run that trains, and one refused at load)."""
    path = write_tiny_world(str(tmp_path / "world"))
    raw = _raw(path, {"mode": "pfd", "terms": [
        {"kind": "soft_label", "weight": 0.3, "temperature": 2.0, "schedule": {"start_fraction": 0.25}},
        {"kind": "logit_matching", "weight": 0.2, "schedule": {"start_step": 3}},
        {"kind": "hint", "weight": 0.05, "teacher_layer": "deep_0", "student_layer": "deep_0"}]})
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = [sys.executable, "-m", "pfd_tf.cli.train", "--config", path]
    proc = subprocess.run(run + ["--model_dir", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "run" / "config.yaml") as f:
        saved = yaml.safe_load(f)["distill"]["terms"]
    assert [t["kind"] for t in saved] == ["soft_label", "logit_matching", "hint"]
    assert saved[0]["schedule"] == {"start_step": 0, "start_fraction": 0.25}  # as given, like distill.swap_fraction
    logged = {}
    for events in glob.glob(str(tmp_path / "run" / "logs" / "train" / "events*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            for value in event.summary.value:
                logged.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    assert min(logged["epoch_loss_logit_matching"]) > 0 and min(logged["epoch_loss_hint"]) > 0
    assert logged["epoch_lambda"][-1] == pytest.approx(0.5)  # both mixing terms on by the last epoch

    raw["distill"]["terms"][1]["teacher"] = "nobody"
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)
    proc = subprocess.run(run + ["--model_dir", str(tmp_path / "bad")], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 2 and "distill.terms[1].teacher: no teacher 'nobody'" in proc.stderr, proc.stderr
    assert not os.path.exists(tmp_path / "bad")  # refused before anything is written
