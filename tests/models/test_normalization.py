"""Tower normalization (`model.normalization`): DenseBatchNorm's statistics, the layers each choice builds,
and exported students served in a fresh process.

`DenseBatchNorm`'s running statistics move by max(1 - momentum, 1/t) at the
t-th update: the plain mean of the batch moments for the first
1/(1 - momentum) updates, the exponential moving average after.  Keras'
stock rule (1 - momentum from the first update, starting at mean 0 and
variance 1) leaves momentum**n of that initial guess after n steps: half of
it after a 64-step run at 0.99, which skews the exported predictions
(issue 11).  The end-to-end test trains such a run, serves the export in a
fresh process, and compares its mean prediction with the click rate; the
same run with the stock rule patched in must miss.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_train_test
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf._keras import keras, tf
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError, Normalization
from pfd_tf.models.towers import DenseBatchNorm, MLPTower, hidden_layers
from pfd_tf.models.two_tower import ProjectionTower

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are
EPS = 1e-3  # DenseBatchNorm's default epsilon


def _batches(n, rows=8, units=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(loc=i, scale=1.0 + i, size=(rows, units)).astype(np.float32) for i in range(n)]


def _moments(x):
    """The batch mean and the unbiased (Bessel-corrected) variance the fused kernel returns."""
    return x.mean(axis=0), x.var(axis=0, ddof=1)


# --------------------------------------------------------------------------
# DenseBatchNorm
# --------------------------------------------------------------------------
def test_first_update_takes_the_batch_moments_whole():
    (x,) = _batches(1)
    layer = DenseBatchNorm(momentum=0.99)
    layer(tf.constant(x), training=True)
    mean, variance = _moments(x)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-5)
    assert float(layer.moving_updates.numpy()) == 1.0
    # Keras' stock rule would be at 0.01 * mean and 0.99 + 0.01 * variance: far from these.
    assert np.all(np.abs(layer.moving_variance.numpy() - (0.99 + 0.01 * variance)) > 0.1)


def test_first_updates_average_the_batch_moments_plainly():
    xs = _batches(3)
    layer = DenseBatchNorm(momentum=0.99)
    for x in xs:
        layer(tf.constant(x), training=True)
    means, variances = zip(*[_moments(x) for x in xs])
    np.testing.assert_allclose(layer.moving_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), np.mean(variances, axis=0), rtol=1e-5)


def test_after_one_over_one_minus_momentum_updates_the_average_is_exponential():
    """momentum 0.5: factors 1, 1/2 (= max(0.5, 1/2)), then 0.5 (> 1/3, 1/4, 1/5): the EMA from the 3rd on."""
    xs = _batches(5)
    layer = DenseBatchNorm(momentum=0.5)
    for x in xs:
        layer(tf.constant(x), training=True)
    m = [_moments(x) for x in xs]
    mean, variance = m[0]
    mean, variance = (mean + m[1][0]) / 2, (variance + m[1][1]) / 2
    for batch_mean, batch_variance in m[2:]:
        mean, variance = 0.5 * mean + 0.5 * batch_mean, 0.5 * variance + 0.5 * batch_variance
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-5)
    # The plain mean of all five would differ (later batches weigh more in the EMA).
    assert not np.allclose(layer.moving_mean.numpy(), np.mean([a for a, _ in m], axis=0), rtol=1e-3)


def test_inference_normalizes_by_the_moving_statistics():
    xs = _batches(2)
    layer = DenseBatchNorm(momentum=0.9)
    for x in xs:
        layer(tf.constant(x), training=True)
    layer.gamma.assign([2.0, 0.5, -1.0])
    layer.beta.assign([0.1, -0.2, 0.3])
    x = _batches(1, seed=5)[0] * 3.0
    y = layer(tf.constant(x), training=False).numpy()
    mean, variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    expected = layer.gamma.numpy() * (x - mean) / np.sqrt(variance + EPS) + layer.beta.numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    before = layer.moving_mean.numpy().copy()
    layer(tf.constant(x))  # training=None is inference: no update
    np.testing.assert_array_equal(layer.moving_mean.numpy(), before)
    assert float(layer.moving_updates.numpy()) == 2.0


def test_training_normalizes_by_the_batch_moments():
    (x,) = _batches(1, seed=3)
    layer = DenseBatchNorm()
    layer.build(x.shape)
    layer.gamma.assign([2.0, 0.5, -1.0])
    layer.beta.assign([0.1, -0.2, 0.3])
    y = layer(tf.constant(x), training=True).numpy()
    # The forward pass divides by the biased batch variance (the kernel's; the unbiased one is what it keeps).
    expected = layer.gamma.numpy() * (x - x.mean(0)) / np.sqrt(x.var(0) + EPS) + layer.beta.numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_gradients_reach_gamma_beta_and_the_input():
    """loss = sum(w * y): d/dbeta = sum_i w, d/dgamma = sum_i w * xhat, and the batch-norm input gradient
    (gamma / sigma) * (w - mean(w) - xhat * mean(w * xhat)), all per unit."""
    (x,) = _batches(1, seed=4)
    w = np.random.default_rng(9).normal(size=x.shape).astype(np.float32)
    layer = DenseBatchNorm()
    layer.build(x.shape)
    layer.gamma.assign([2.0, 0.5, -1.0])
    inputs = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        loss = tf.reduce_sum(w * layer(inputs, training=True))
    d_input, d_gamma, d_beta = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    sigma = np.sqrt(x.var(0) + EPS)
    xhat = (x - x.mean(0)) / sigma
    np.testing.assert_allclose(d_beta.numpy(), w.sum(0), rtol=1e-4)
    np.testing.assert_allclose(d_gamma.numpy(), (w * xhat).sum(0), rtol=1e-4)
    expected = layer.gamma.numpy() / sigma * (w - w.mean(0) - xhat * (w * xhat).mean(0))
    np.testing.assert_allclose(d_input.numpy(), expected, rtol=1e-3, atol=1e-5)
    assert layer.trainable_weights == [layer.gamma, layer.beta]  # the statistics are not trained
    assert tape.gradient(loss, layer.moving_mean) is None


def test_dense_batch_norm_config_round_trips():
    layer = DenseBatchNorm(momentum=0.9, epsilon=1e-4, name="bn")
    clone = DenseBatchNorm.from_config(layer.get_config())
    assert (clone.momentum, clone.epsilon, clone.name) == (0.9, 1e-4, "bn")
    assert keras.layers.deserialize(keras.layers.serialize(layer)).get_config() == layer.get_config()


# --------------------------------------------------------------------------
# What each normalization builds
# --------------------------------------------------------------------------
def _kinds(layers):
    return [type(layer).__name__ for layer in layers]


@pytest.mark.parametrize("normalization,expected", [
    ("none", ["Dense", "LeakyReLU", "Dense", "LeakyReLU"]),
    ("layer", ["Dense", "LayerNormalization", "LeakyReLU", "Dense", "LayerNormalization", "LeakyReLU"]),
    ("batch", ["Dense", "DenseBatchNorm", "LeakyReLU", "Dense", "DenseBatchNorm", "LeakyReLU"]),
])
def test_each_normalization_builds_its_layers(normalization, expected):
    layers = hidden_layers([16, 8], normalization, batch_norm_momentum=0.9)
    assert _kinds(layers) == expected
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    assert [d.use_bias for d in dense] == [normalization == "none"] * 2  # beta is the offset otherwise
    assert all(layer.momentum == 0.9 for layer in layers if isinstance(layer, DenseBatchNorm))

    tower = MLPTower([16, 8], normalization=normalization, batch_norm_momentum=0.9)
    assert _kinds(tower.hidden) == expected
    projection = ProjectionTower([16, 8, 4], normalization=normalization, batch_norm_momentum=0.9)
    assert _kinds(projection.hidden) == expected
    x = tf.random.normal([5, 6], seed=1)
    assert tower(x, training=True).shape == [5]
    np.testing.assert_allclose(tf.norm(projection(x, training=True), axis=-1).numpy(), 1.0, rtol=1e-5)
    variables = {v.name.split("/")[-1].split(":")[0] for v in tower.weights}
    assert ("moving_mean" in variables) == (normalization == "batch")
    assert ("gamma" in variables) == (normalization != "none")

    for cls, layer in ((MLPTower, tower), (ProjectionTower, projection)):
        config = layer.get_config()
        assert config["normalization"] == normalization and config["batch_norm_momentum"] == 0.9
        clone = cls.from_config(config)
        assert clone.get_config() == config
        assert _kinds(clone.hidden) == expected
        assert [l.momentum for l in clone.hidden if isinstance(l, DenseBatchNorm)] == \
            [0.9] * expected.count("DenseBatchNorm")


def test_config_picks_the_normalization_for_every_tower(tmp_path):
    from pfd_tf.distill.build import build_distiller

    path, _ = write_click_world(str(tmp_path), rows=50)
    config = config_lib.load(path, ["model.normalization=layer"])
    distiller = build_distiller(config)
    for tower in (distiller.student.tower, distiller.teacher.tower):
        assert _kinds(tower.hidden) == ["Dense", "LayerNormalization", "LeakyReLU"] * 2
    config = config_lib.load(path, ["model.batch_norm_momentum=0.9"])
    distiller = build_distiller(config)
    norms = [l for t in (distiller.student.tower, distiller.teacher.tower) for l in t.hidden
             if isinstance(l, DenseBatchNorm)]
    assert len(norms) == 4 and {l.momentum for l in norms} == {0.9}
    assert config_lib.load(path).model.normalization is Normalization.BATCH  # the paper's default

    with pytest.raises(ConfigError, match=r"model\.normalization: unknown value 'group'"):
        config_lib.load(path, ["model.normalization=group"])
    with pytest.raises(ConfigError, match=r"model\.batch_norm_momentum: must be in \[0, 1\)"):
        config_lib.load(path, ["model.batch_norm_momentum=1.0"])


# --------------------------------------------------------------------------
# End to end: a short run, its export served in a fresh process
# --------------------------------------------------------------------------
COLUMNS = ["user_id", "item_id", "device", "dwell", "label"]


def write_click_world(directory: str, rows: int = 3000, seed: int = 0) -> tuple[str, float]:
    """Train/test CSVs with a click rate near 0.2 and a config for a 64-step run; (config path, training click rate).

    The click's logit is a user effect plus an item effect plus an intent that
    only the privileged `dwell` reveals.  Adagrad at 0.2 on batches of 64
    calibrates the student's mean prediction within 64 steps; the paper's
    0.01 would still be near its initial 0.5.
    """
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 60, rows)
    items = rng.integers(0, 90, rows)
    intent = rng.normal(0, 1, rows)
    logit = rng.normal(0, 0.8, 60)[users] + rng.normal(0, 0.5, 90)[items] + intent - 1.9
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    device = rng.choice(["ios", "android", "pc"], rows)
    dwell = np.round(intent + rng.normal(0, 0.5, rows), 3)
    test = np.arange(rows) >= rows * 0.8
    write_train_test(directory, COLUMNS, list(zip(users, items, device, dwell, label)), test)
    config = {
        "data": {"train_files": ["train/*.csv"], "eval_files": ["test/*.csv"], "label": "label"},
        "features": [
            {"name": "user_id", "kind": "categorical", "hash_buckets": 60, "dim": 4, "side": "user"},
            {"name": "item_id", "kind": "categorical", "hash_buckets": 90, "dim": 4, "side": "item"},
            {"name": "device", "kind": "categorical", "vocabulary": ["ios", "android", "pc"], "dim": 2},
            {"name": "dwell", "kind": "numeric", "boundaries": [-1.0, 0.0, 1.0], "dim": 3, "role": "privileged"},
        ],
        "model": {"student_tower": [16, 8], "teacher_tower": [16, 8], "normalization": "batch",
                  "batch_norm_momentum": 0.99},
        "distill": {"mode": "pfd", "lambda": 0.5, "swap_step": 8},
        "train": {"batch_size": 64, "steps": 64, "log_every": 64, "eval_batch_size": 256,
                  "learning_rate": 0.2, "seed": 1},
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path, float(label[~test].mean())


def _serve(export_dir: str, csv_path: str, tmp_path) -> np.ndarray:
    """The export's probabilities for the rows of `csv_path`, from a fresh process that never imports pfd_tf."""
    out = str(tmp_path / f"served-{len(os.listdir(tmp_path))}.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "serve_export.py"), export_dir, csv_path, out],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def _train(directory, overrides=()):
    from pfd_tf.trainer import train

    path, click_rate = write_click_world(directory)
    config = config_lib.load(path, list(overrides))
    model_dir = os.path.join(directory, "run")
    train(config, model_dir, verbose=0)
    return config, model_dir, click_rate


def _restored_distiller(config, model_dir):
    from pfd_tf.trainer import build_and_compile

    model = build_and_compile(config, tf.distribute.get_strategy())
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    tf.train.Checkpoint(model=model).read(latest).expect_partial()
    return model


@pytest.fixture(scope="module")
def short_batch_norm_run(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("short_bn"))
    return _train(directory)


def test_a_short_runs_export_predicts_the_click_rate(short_batch_norm_run, tmp_path):
    """Issue 11: 64 steps at momentum 0.99, where Keras' statistics would still be half their initial guess."""
    config, model_dir, click_rate = short_batch_norm_run
    assert 0.18 < click_rate < 0.25
    served = _serve(os.path.join(model_dir, "export", "student"), config.resolve_path("train/part-0.csv"), tmp_path)
    assert served.std() > 0.01  # a model that learned something, not a constant
    assert served.mean() == pytest.approx(click_rate, rel=0.05)
    # The statistics the export serves with were recomputed at the final weights (recalibrate_batch_norm):
    # 1 / (1 - 0.99) = 100 training batches after the run, not the run's 64 updates.
    model = _restored_distiller(config, model_dir)
    norms = [layer for layer in model.student.tower.hidden if isinstance(layer, DenseBatchNorm)]
    assert len(norms) == 2 and all(float(layer.moving_updates.numpy()) == 100.0 for layer in norms)


def test_keras_stock_statistics_would_skew_the_same_short_run(tmp_path, monkeypatch):
    """The rule above, minus its 1/t: the export then misses the click rate by far more than 5%."""
    def stock(self, mean, variance):
        self.moving_updates.assign_add(1.0)
        factor = 1.0 - self.momentum
        self.moving_mean.assign_sub((self.moving_mean - tf.stop_gradient(mean)) * factor)
        self.moving_variance.assign_sub((self.moving_variance - tf.stop_gradient(variance)) * factor)

    monkeypatch.setattr(DenseBatchNorm, "_update_statistics", stock)
    config, model_dir, click_rate = _train(str(tmp_path / "world"))
    served = _serve(os.path.join(model_dir, "export", "student"), config.resolve_path("train/part-0.csv"), tmp_path)
    assert abs(served.mean() / click_rate - 1) > 0.15


def test_exported_statistics_are_the_trained_models(short_batch_norm_run):
    """The first batch norm's moving variance against its input's variance over the training rows, at the
    final weights (its input, the first Dense layer's output, does not depend on any statistic)."""
    from pfd_tf.data.pipeline import make_dataset_fn
    from pfd_tf.models.embedding import concat_inputs

    config, model_dir, _ = short_batch_norm_run
    model = _restored_distiller(config, model_dir)
    on_train = dataclasses.replace(config, data=dataclasses.replace(config.data, eval_files=config.data.train_files))
    ids = [ids for ids, _ in make_dataset_fn(on_train, "eval", 10_000, training=False)(None)]
    assert len(ids) == 1
    dense, norm = model.student.tower.hidden[:2]
    h = dense(concat_inputs(model.student.input_layers, ids[0], False, None)).numpy()
    np.testing.assert_allclose(norm.moving_variance.numpy(), h.var(axis=0, ddof=1), rtol=0.1)


@pytest.mark.parametrize("normalization", ["layer", "none"])
def test_layer_and_no_normalization_train_and_serve_what_they_trained(normalization, tmp_path):
    from pfd_tf.data.pipeline import make_dataset_fn

    config, model_dir, _ = _train(str(tmp_path / "world"), [f"model.normalization={normalization}",
                                                             "train.steps=24", "train.log_every=12"])
    model = _restored_distiller(config, model_dir)
    variables = {v.name for v in model.student.variables}
    assert not any("batch_norm" in name or "moving" in name for name in variables)
    assert any("layer_norm" in name for name in variables) == (normalization == "layer")
    assert any("dense_0/bias" in name for name in variables) == (normalization == "none")
    logits = [model(ids, training=False).numpy()
              for ids, _ in make_dataset_fn(config, "eval", 256, training=False)(None)]
    expected = 1 / (1 + np.exp(-np.concatenate(logits)))
    served = _serve(os.path.join(model_dir, "export", "student"), config.resolve_path("test/test.csv"), tmp_path)
    assert served.shape == expected.shape
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert served.std() > 0
