"""Behavioural tests of the synthetic ensemble world (first-, second- and higher-order click logit)."""
import dataclasses
import filecmp
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
from pfd_tf.names import DEFAULT_TASK
from pfd_tf import config as config_lib
from pfd_tf.datasets import ensemble, ensemble_config, ensemble_world
from pfd_tf.datasets.ensemble import oracle_aucs, simulate_ensemble
from pfd_tf.datasets.ensemble_world import EnsembleWorld

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS, DAYS = 20_000, 8
FIELDS = ensemble_world.field_names()
PARTS = ("first_order", "second_order", "higher_order")


def read_csvs(pattern):
    """(header, {column: np.array of str}) of all CSV files matching pattern, in file-name order."""
    rows, header = [], None
    for path in sorted(glob.glob(pattern), key=os.path.basename):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert header in (None, lines[0].split(","))
        header = lines[0].split(",")
        rows.extend(line.split(",") for line in lines[1:])
    return header, {k: np.array(v) for k, v in zip(header, zip(*rows))}


@pytest.fixture(scope="module")
def world():
    return EnsembleWorld.for_rows(ROWS, DAYS)


@pytest.fixture(scope="module")
def sim(world):
    return simulate_ensemble(world, seed=0, latents=True)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("ensemble_seed0"))
    ensemble.generate_ensemble(out_dir, rows=ROWS, seed=0, days=DAYS)
    return out_dir


@pytest.fixture(scope="module")
def config(out):
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_same_seed_same_bytes_other_seed_differs(out, tmp_path):
    again, other = str(tmp_path / "again"), str(tmp_path / "other")
    ensemble.generate_ensemble(again, rows=ROWS, seed=0, days=DAYS)
    ensemble.generate_ensemble(other, rows=ROWS, seed=1, days=DAYS)
    files = sorted(os.path.relpath(p, out)
                   for p in glob.glob(os.path.join(out, "**", "*.*"), recursive=True))
    assert "config.yaml" in files and len(files) == DAYS + 1
    match, mismatch, errors = filecmp.cmpfiles(out, again, files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(files)
    _, mismatch, _ = filecmp.cmpfiles(out, other, files, shallow=False)
    assert "train/day-00.csv" in mismatch and "test/day-07.csv" in mismatch


def test_layout_values_and_click_rate(out, config, sim, world):
    assert sorted(os.listdir(os.path.join(out, "train"))) == [f"day-{d:02d}.csv" for d in range(DAYS - 1)]
    assert sorted(os.listdir(os.path.join(out, "test"))) == [f"day-{DAYS - 1:02d}.csv"]
    header, data = read_csvs(os.path.join(out, "*", "day-*.csv"))
    assert header == list(FIELDS) + ["day", "click"]
    assert [f["name"] for f in config["features"]] == list(FIELDS)
    assert len(data["day"]) == ROWS
    for name in header:  # what is written is what was simulated
        assert data[name].tolist() == sim[name].astype(str).tolist(), name
    cards = world.field_cardinalities()
    for name in FIELDS:
        values = sim[name]
        assert values.min() >= 0 and values.max() < cards[name], name
        if cards[name] <= 50:  # small fields: every value is drawn, the top one by Zipf's law (exponent 1)
            counts = np.bincount(values, minlength=cards[name])
            top_share = 1 / np.sum(1 / np.arange(1, cards[name] + 1))
            assert counts.min() > 0 and abs(counts.max() / ROWS - top_share) < 0.02, name
    assert 0.10 < sim["click"].mean() < 0.25
    assert abs(sim["click"].mean() - world.click_rate) < 0.01


def test_oracle_aucs_separate_the_orders(sim):
    """On the ~2,500 held-out rows of the test day, each order the logit adds is worth AUC:
    what LR can reach < what FM can reach < the whole logit."""
    aucs = oracle_aucs(sim)
    assert (sim["day"] == DAYS - 1).sum() > 2000
    assert aucs["first"] > 0.65
    assert aucs["first_second"] > aucs["first"] + 0.03
    assert aucs["all"] > aucs["first_second"] + 0.02


def test_parts_have_their_scales_and_do_not_overlap(sim, world):
    """Each part's std is its scale; the parts are uncorrelated (each is centred under the
    popularities), and the higher-order part has (nearly) no mean given any one field:
    LR cannot pick it up."""
    for name, scale in zip(PARTS, (world.first_order_scale, world.second_order_scale,
                                   world.higher_order_scale)):
        assert abs(sim[name].std() / scale - 1) < 0.06, name
    corr = np.corrcoef(np.stack([sim[p] for p in PARTS]))
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.03
    for field in ("c02", "c09", "c13"):  # the first triple
        values, higher = sim[field], sim["higher_order"]
        counts = np.bincount(values)
        means = np.bincount(values, weights=higher)[counts > 200] / counts[counts > 200]
        assert np.abs(means).max() < 0.15 * higher.std(), field


def test_scales_change_only_their_part(world):
    """The same seed draws the same impressions; a scale multiplies its part and nothing else."""
    one = simulate_ensemble(world, seed=0, latents=True)
    for changes in ({"higher_order_scale": 0.0}, {"second_order_scale": 1.6}, {"first_order_scale": 0.5}):
        other = simulate_ensemble(dataclasses.replace(world, **changes), seed=0, latents=True)
        for name in FIELDS + ("day",):
            assert (other[name] == one[name]).all(), name
        for part in PARTS:
            field = part.replace("_order", "_order_scale")
            ratio = changes.get(field, getattr(world, field)) / getattr(world, field)
            np.testing.assert_allclose(other[part], ratio * one[part], atol=1e-9, err_msg=part)
        assert abs(other["click"].mean() - world.click_rate) < 0.01


def test_written_config_loads_three_teachers_and_a_gated_dnn_student(out, world):
    config = config_lib.load(os.path.join(out, "config.yaml"))
    config_lib.validate(config)
    assert config.data.label == "click"
    assert [f.name for f in config.features] == list(FIELDS)
    assert {f.dim for f in config.features} == {ensemble_world.EMBEDDING_DIM}
    assert not any(f.privileged for f in config.features)
    assert [f.kind for f in config.features] == [config_lib.FeatureKind.CATEGORICAL] * len(FIELDS)
    for spec, card in zip(config.features, world.field_cardinalities().values()):
        if card <= ensemble_world.VOCABULARY_MAX and spec.name not in ensemble_world.ID_FIELDS:
            assert spec.vocabulary == tuple(str(v) for v in range(card)), spec.name
        else:
            assert spec.hash_buckets == 2 * card, spec.name
    assert config.feature("c19").hash_buckets == 2 * world.id_cardinality
    Z = config_lib.ZooModel
    assert [(t.name, t.model, t.features) for t in config.teachers] == [
        ("fm", Z.FM, config_lib.FeatureView.REGULAR), ("dcn_v2", Z.DCN_V2, config_lib.FeatureView.REGULAR),
        ("xdeepfm", Z.XDEEPFM, config_lib.FeatureView.REGULAR)]
    assert (config.teachers[1].cross_layers, config.teachers[1].cross_rank) == (2, 16)
    assert config.teachers[2].cin_layers == (64, 64)
    assert config.student.model is Z.DNN
    assert config.distill.mode is config_lib.Mode.TEACHERS
    assert config.distill.ensemble is config_lib.Ensemble.GATING and config.distill.lambda_ == 0.5
    assert config.model.student_tower == config.model.teacher_tower == (256, 128)
    assert config.train.optimizer is config_lib.Optimizer(ensemble_config.OPTIMIZER) is config_lib.Optimizer.ADAM
    assert config.train.learning_rate == ensemble_config.LEARNING_RATE
    assert config.train.batch_size == 1024 and config.train.epochs == ensemble_config.EPOCHS


def test_world_is_sized_for_rows_and_validated():
    assert EnsembleWorld.for_rows(400_000).id_cardinality == 20_000
    small = EnsembleWorld.for_rows(2_000, days=3)
    assert small.id_cardinality == 100 and small.days == 3
    assert len(small.field_cardinalities()) == 20
    for bad, message in [(dict(days=1), "days"), (dict(pair_dim=8, triple_rank=9), "pair_dim"),
                         (dict(cardinalities=(2, 3)), "cardinalities"), (dict(click_rate=0.0), "click_rate"),
                         (dict(higher_order_scale=-1.0), "higher_order_scale")]:
        with pytest.raises(ValueError, match=message):
            simulate_ensemble(EnsembleWorld.for_rows(2_000, **bad), seed=0)


def test_world_overrides_are_typed():
    from pfd_tf.datasets.scenarios import world_overrides

    cards = ",".join(["4"] * 18)
    items = ["higher_order_scale=0", "id_cardinality=500", f"cardinalities={cards}"]
    assert world_overrides("ensemble", items) == {
        "higher_order_scale": 0.0, "id_cardinality": 500, "cardinalities": (4,) * 18}
    with pytest.raises(ValueError, match=re.escape("18 comma-separated values")):
        world_overrides("ensemble", ["cardinalities=2,3"])


def test_cli_ensemble_scenario_with_world_overrides(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    args = [sys.executable, "-m", "pfd_tf.cli.data", "--scenario", "ensemble", "--rows", "3000",
            "--seed", "7", "--days", "3"]
    out = tmp_path / "cli"
    proc = subprocess.run([*args, "--out", str(out), "--world", "higher_order_scale=0",
                           "--world", "id_cardinality=700"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(out / "config.yaml") in proc.stdout
    with open(out / "config.yaml", encoding="utf-8") as f:
        written = yaml.safe_load(f)
    assert written["data"]["label"] == "click" and written["train"]["seed"] == 7
    assert {f["name"]: f.get("hash_buckets") for f in written["features"]}["c20"] == 1400
    _, test = read_csvs(str(out / "test" / "*.csv"))
    assert set(test["day"]) == {"2"}
    # The overrides reached the world: the test day's clicks are the overridden world's.
    world = EnsembleWorld.for_rows(3000, 3, higher_order_scale=0.0, id_cardinality=700)
    clicks = simulate_ensemble(world, 7)["click"][-len(test["click"]):]
    assert test["click"].tolist() == clicks.astype(str).tolist()

    proc = subprocess.run([*args, "--out", str(tmp_path / "bad"), "--world", "higher_order_scal=0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "'higher_order_scal=0'" in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_pipeline_reads_the_written_fields(out):
    from pfd_tf.data.pipeline import make_dataset_fn

    config = config_lib.load(os.path.join(out, "config.yaml"))
    ids, label = next(iter(make_dataset_fn(config, "train", 64, training=False)(None)))
    assert label[DEFAULT_TASK].shape == (64,)
    assert sorted(ids) == sorted(FIELDS)
    for name in FIELDS:
        assert ids[name].shape == (64,), name
