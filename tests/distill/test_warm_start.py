"""`model.init_from` (KD-DAGFM's fine-tune phase): what a warm start restores, what it leaves, its errors,
and the three phases chained through `pfd-train`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_tiny_world
from pfd_tf import config as config_lib
from pfd_tf._keras import tf
from pfd_tf.config import ConfigError
from pfd_tf.datasets.scenarios import SCENARIOS
from pfd_tf.distill import warm_start
from pfd_tf.distill.build import build_distiller
from pfd_tf.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _source_checkpoint(path: str, directory: str, overrides=()):
    """(distiller, checkpoint prefix): a distiller of the tiny world's config with every trainable variable set
    to distinct random values, saved into `directory` as a run saves it (`tf.train.Checkpoint(model=...)`)."""
    model = build_distiller(config_lib.load(path, list(overrides)))
    rng = np.random.default_rng(7)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    return model, tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, 1).save(1)


def _values(variables) -> list[np.ndarray]:
    return [v.numpy().copy() for v in variables]


@pytest.mark.parametrize("tables", [True, False])
def test_warm_start_restores_the_named_network_and_leaves_the_rest(tmp_path, tables):
    path = write_tiny_world(str(tmp_path))  # pfd: a teacher and a student on shared tables
    source, prefix = _source_checkpoint(path, str(tmp_path / "source"))
    config = config_lib.load(path, [f"model.init_from.checkpoint={prefix}", f"model.init_from.tables={tables}"])
    model = build_distiller(config)
    before_student, before_teacher = _values(model.student.variables), _values(model.teacher.variables)

    assert warm_start.apply(model, config) == [f"student ({'with' if tables else 'without'} its tables)"]

    table_ids = {id(v) for v in warm_start.table_variables(model.student)}
    assert table_ids and len(table_ids) < len(model.student.variables)
    for old, fresh, now, saved in zip(source.student.variables, before_student, model.student.variables,
                                      _values(source.student.variables)):
        assert now.shape == old.shape
        expected = fresh if id(now) in table_ids and not tables else saved
        np.testing.assert_array_equal(now.numpy(), expected, err_msg=now.name)
        assert not np.array_equal(fresh, saved)  # the test can tell the two apart
    # The teacher was not named: its own layers and its private (privileged) tables keep their fresh init;
    # the tables it shares with the student are the student's.
    for fresh, now in zip(before_teacher, model.teacher.variables):
        if id(now) not in table_ids:
            np.testing.assert_array_equal(now.numpy(), fresh, err_msg=now.name)


def test_a_teacher_can_be_warm_started_by_name(tmp_path):
    path = write_tiny_world(str(tmp_path))
    source, prefix = _source_checkpoint(path, str(tmp_path / "source"))
    config = config_lib.load(path, [f"model.init_from.checkpoint={prefix}", "model.init_from.networks=[teacher]"])
    model = build_distiller(config)
    fresh_student_layers = _values(model.student.tower.variables)
    warm_start.apply(model, config)
    for now, saved in zip(model.teacher.variables, source.teacher.variables):
        np.testing.assert_array_equal(now.numpy(), saved.numpy())
    for now, fresh in zip(model.student.tower.variables, fresh_student_layers):
        np.testing.assert_array_equal(now.numpy(), fresh)


@pytest.mark.parametrize("overrides, key, fragment", [
    (["model.init_from.checkpoint=nowhere"], "model.init_from.checkpoint:", "not a run's model_dir or a checkpoint"),
    (["model.init_from.checkpoint=SOURCE", "model.init_from.networks=[teacher]"], "model.init_from.networks[0]:",
     "no network 'teacher' there (networks there, by checkpoint path: model/student)"),
    (["model.init_from.checkpoint=SOURCE", "features.user_id.dim=8"], "model.init_from:",
     "shape (100, 4) when attempting to restore variable with shape (100, 8)"),
    (["model.init_from.checkpoint=SOURCE", "model.student_tower=[16]"], "model.init_from:",
     "network 'student' of this config does not match model/student there"),
], ids=["no-checkpoint", "no-such-network", "embedding-dim", "tower"])
def test_a_warm_start_that_cannot_be_done_stops_before_anything_is_written(tmp_path, overrides, key, fragment):
    path = write_tiny_world(str(tmp_path))
    _source_checkpoint(path, str(tmp_path / "baseline_run" / "checkpoints"), ["distill.mode=baseline"])
    overrides = [o.replace("SOURCE", str(tmp_path / "baseline_run")) for o in overrides]
    config = config_lib.load(path, overrides)
    model_dir = str(tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        train(config, model_dir, verbose=0)
    assert str(err.value).startswith(key) and fragment in str(err.value), str(err.value)
    where = str(tmp_path / ("nowhere" if "nowhere" in overrides[0] else "baseline_run"))
    assert where in str(err.value)
    assert os.listdir(model_dir) == []


@pytest.mark.parametrize("overrides, message", [
    (["model.init_from.networks=[fm]"], "model.init_from.networks[0]: no network 'fm' in this config"),
    (["model.init_from.networks=[]"], "model.init_from.networks: name at least one network"),
    (["model.init_from.networks=[student, student]"], "model.init_from.networks[1]: 'student' is named twice"),
    (["model.init_from.tables=3"], "model.init_from.tables: expected true or false"),
    (["model.init_from.where=x"], "model.init_from.where: unknown key"),
    (["model.sharing=independent", "distill.teacher_checkpoint=elsewhere", "model.init_from.networks=[teacher]"],
     "model.init_from.networks[0]: teacher 'teacher' is pre-trained and frozen"),
])
def test_init_from_is_validated_at_load(tmp_path, overrides, message):
    path = write_tiny_world(str(tmp_path))
    with pytest.raises(ConfigError, match=None) as err:
        config_lib.load(path, ["model.init_from.checkpoint=somewhere", *overrides])
    assert message in str(err.value)


def test_the_saved_config_holds_the_warm_start_path_absolute(tmp_path):
    path = write_tiny_world(str(tmp_path))
    config = config_lib.load(path, ["model.init_from.checkpoint=runs/distill"])
    saved = config_lib.saved_dict(config)["model"]["init_from"]
    assert saved == {"checkpoint": str(tmp_path / "runs" / "distill"), "networks": ["student"], "tables": True}
    assert config_lib.from_dict(config.to_dict(), config.base_dir) == config


SMALL = ("train.batch_size=256", "train.log_every=4")


def _pfd_train(world: str, phase: str, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pfd_tf.cli.train", "--config", f"config_{phase}.yaml",
               "--model_dir", f"runs/{phase}", *[item for o in (*SMALL, *overrides) for item in ("--set", o)]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command, cwd=world, capture_output=True, text=True, timeout=300, env=env)


def test_the_three_phases_chain_through_pfd_train(tmp_path, capsys):
    """Three `pfd-train` processes by design (each phase is a run; ~30 s): the configs pfd-data
    writes, run as their first line says; the fine-tuned student is exported and serves; a resume does not
    warm-start again."""
    world = str(tmp_path / "world")
    SCENARIOS["interactions"](world, rows=4000, seed=0)
    with open(os.path.join(world, "config_finetune.yaml")) as f:
        assert f.readline().startswith("# KD-DAGFM phase 3 of 3: pfd-train --config config_finetune.yaml")
    slow = "train.learning_rate=0.00001"  # the fine-tune's first checkpoint: the distilled student, barely moved
    one = "train.epochs=1"  # every phase as long (the files' own lengths differ): the steps compare below
    for phase, overrides in (("teacher", (one,)), ("distill", (one,)), ("finetune", (slow, one))):
        proc = _pfd_train(world, phase, *overrides)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warm start: student (with its tables) from runs/distill" in proc.stdout
    runs = os.path.join(world, "runs")
    with open(os.path.join(runs, "distill", "metrics.json")) as f:
        distill_steps = json.load(f)["steps"]
    with open(os.path.join(runs, "finetune", "metrics.json")) as f:
        steps = json.load(f)["steps"]
    assert steps == distill_steps  # its steps count from 0 (a new optimisation), not on from the distilled run's
    distilled = tf.train.load_checkpoint(os.path.join(runs, "distill", "checkpoints"))
    finetuned = tf.train.load_checkpoint(os.path.join(runs, "finetune", "checkpoints"))
    for key in ("model/student/body/logit/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                "model/student/_tables/c01/embeddings/.ATTRIBUTES/VARIABLE_VALUE"):
        np.testing.assert_allclose(finetuned.get_tensor(key), distilled.get_tensor(key), atol=1e-3)
    serve = tf.saved_model.load(os.path.join(runs, "finetune", "export", "student")).signatures["serving_default"]
    inputs = {name: tf.constant(["0", "1"]) for name in serve.structured_input_signature[1]}
    scores = serve(**inputs)["probability"].numpy()
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))

    # Resumed (more epochs), with the distilled run gone: it restores its own checkpoint, never the warm start.
    os.rename(os.path.join(runs, "distill"), os.path.join(runs, "distill.gone"))
    config = config_lib.load(os.path.join(world, "config_finetune.yaml"), [*SMALL, slow, "train.epochs=2"])
    assert train(config, os.path.join(runs, "finetune"), verbose=1, export=False)["steps"] > steps
    printed = capsys.readouterr().out
    assert f"at step {steps}" in printed and "resumed from" in printed
    assert "warm start" not in printed


def test_a_warm_start_in_a_parameter_server_cluster(tmp_path):
    """A loopback cluster (2 workers, 2 parameter servers, tables sharded over both; ~30 s): the student's layers
    are restored where the strategy placed them, its sharded tables keep their fresh init (`tables: false`)."""
    path = write_tiny_world(str(tmp_path))
    source = str(tmp_path / "source")
    train(config_lib.load(path, ["distill.mode=baseline"]), source, verbose=0, export=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "loopback_ps.py"), path, str(tmp_path / "run"),
                           "distill.mode=baseline", f"model.init_from.checkpoint={source}",
                           "model.init_from.tables=false", "train.learning_rate=0.00001"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"warm start: student (without its tables) from {source}" in proc.stdout
    sharding = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert sharding["sharding"]["user_id"]["sharded"]
    before = tf.train.load_checkpoint(os.path.join(source, "checkpoints"))
    after = tf.train.load_checkpoint(os.path.join(tmp_path, "run", "checkpoints"))
    for key in after.get_variable_to_shape_map():
        if key.startswith("model/student/") and "OPTIMIZER" not in key:
            gap = np.abs(after.get_tensor(key) - before.get_tensor(key)).max()
            if "/tables/" in key:
                assert gap > 0.01, key  # fresh, then 12 steps at a rate of 1e-5
            else:
                assert gap < 1e-3, key  # restored, then 12 steps at a rate of 1e-5
