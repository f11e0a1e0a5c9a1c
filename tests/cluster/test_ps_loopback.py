"""The very same Distiller.train_step under ParameterServerStrategy on a loopback cluster."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import write_tiny_world

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where the helper scripts are


@pytest.fixture(scope="module")
def ps_run(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("ps"))
    config = write_tiny_world(directory)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    # 101 rows split over 2 servers: uneven shards, where a div/mod mix-up would show.
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "loopback_ps.py"), config, os.path.join(directory, "run"),
         "features.user_id.hash_buckets=101"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    return results, directory


def test_trains_all_steps_and_exports(ps_run):
    results, directory = ps_run
    metrics = results["metrics"]
    assert metrics["steps"] == 12
    assert metrics["teacher"] is not None
    for who in ("student", "teacher"):
        assert 0.0 < metrics[who]["logloss"] < 1.0
        assert 0.0 <= metrics[who]["auc"] <= 1.0
    assert os.path.exists(os.path.join(directory, "run", "export", "student", "saved_model.pb"))


def test_embeddings_and_adagrad_accumulators_shard_alike(ps_run):
    results, _ = ps_run
    sharding = results["sharding"]
    assert set(sharding) >= {"user_id", "item_id", "dwell", "cart"}
    assert [shape[0] for shape, _ in sharding["user_id"]["table"]] == [51, 50]
    for name, info in sharding.items():
        assert info["sharded"], name
        assert len(info["table"]) == 2, name  # split across both parameter servers
        assert {d for _, d in info["table"]} == {
            "/job:ps/replica:0/task:0/device:CPU:0", "/job:ps/replica:0/task:1/device:CPU:0"}
        # One accumulator per shard, of the shard's shape, on the shard's server.
        assert info["accumulator"] == info["table"], name


def test_only_embedding_tables_are_partitioned(ps_run):
    """Dense kernels, batch norm, metrics and the step stay whole: a step reads them whole anyway."""
    whole = ps_run[0]["whole"]
    assert any("dense" in name for name in whole) and any("auc" in name or "true_positives" in name for name in whole)
    assert all(whole.values()), [name for name, ok in whole.items() if not ok]


def test_export_predicts_what_the_sharded_model_predicts_in_the_cluster(ps_run, tmp_path):
    import glob

    import numpy as np

    _, directory = ps_run
    run = os.path.join(directory, "run")
    (test_csv,) = glob.glob(os.path.join(directory, "test", "*.csv"))
    out = str(tmp_path / "served.npy")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "serve_export.py"), os.path.join(run, "export", "student"),
         test_csv, out, "tags=4"], capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    in_cluster = np.load(os.path.join(run, "in_cluster_predictions.npy"))
    np.testing.assert_allclose(np.load(out), in_cluster, atol=1e-5)
    assert in_cluster.std() > 0
