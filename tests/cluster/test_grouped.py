"""Request-grouped batches (`data.group_by`, `pfd_tf.data.grouped`): every group whole in one batch, each row
once per epoch, on the streamed path and the cached one; the bad inputs refused before anything is written.

The world is `visitation_runs.py`'s: every row carries its own id (`rid`, one vocabulary entry per row:
id rid + 1), file k holds rows 64 k .. 64 k + 63, and the group is the row's `user` (rid % 13) within its file.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (Keras 2 before TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.config import ConfigError
from pfd_tf.data.files import DataError
from pfd_tf.data.pipeline import make_dataset_fn
from pfd_tf.names import DEFAULT_TASK, GROUP

from visitation_runs import write_rid_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES, PER_FILE, USERS = 4, 64, 13
GROUPS = FILES * USERS  # 52
PER_BATCH = 4  # 13 batches an epoch


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("grouped"))
    path, _ = write_rid_world(directory, files=FILES, rows_per_file=PER_FILE)
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["data"].update({"group_by": ["user"], "groups_per_batch": PER_BATCH, "shuffle_buffer": 8})
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)
    return path


def _group_of(rid: int) -> tuple[int, int]:
    return rid // PER_FILE, rid % USERS


def _batches(config, n: int, split: str = "train", start_step: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    return _batches_of(make_dataset_fn(config, split, 64, split == "train", start_step=start_step), n)


def _batches_of(fn, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first `n` batches of a dataset_fn: each row's rid and its group's index in the batch."""
    ds = fn(None)
    out = []
    for ids, labels in ds.take(n):
        assert set(labels) == {DEFAULT_TASK, GROUP}
        assert labels[GROUP].shape == labels[DEFAULT_TASK].shape
        out.append((ids["rid"].numpy() - 1, labels[GROUP].numpy()))
    return out


def _assert_whole_groups(batches, distinct: bool = True, full: bool = True) -> None:
    """Each batch: PER_BATCH groups, each index's rows exactly every row of one group; with `distinct`, PER_BATCH
    different groups (on a cluster a group may come twice in a batch: once from each of two epochs); without
    `full`, fewer (a cluster run's last batches hold empty groups, its padding)."""
    members = collections.defaultdict(list)
    for rid in range(FILES * PER_FILE):
        members[_group_of(rid)].append(rid)
    for rids, index in batches:
        present = sorted(set(index.tolist()))
        assert present == list(range(PER_BATCH)) if full else set(present) <= set(range(PER_BATCH)), present
        keys = []
        for g in present:
            rows = sorted(rids[index == g].tolist())
            keys.append(_group_of(rows[0]))
            assert rows == members[keys[-1]], (g, rows)
        if distinct:
            assert len(set(keys)) == len(present), keys


@pytest.mark.parametrize("cache", [False, True])
def test_each_batch_holds_whole_groups_and_each_row_comes_once_per_epoch(world, cache):
    config = config_lib.load(world)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, cache=cache))
    batches = _batches(config, 2 * GROUPS // PER_BATCH)
    _assert_whole_groups(batches)
    half = GROUPS // PER_BATCH
    epochs = [np.concatenate([rids for rids, _ in batches[:half]]), np.concatenate([rids for rids, _ in batches[half:]])]
    for rows in epochs:
        assert sorted(rows.tolist()) == list(range(FILES * PER_FILE))
    assert epochs[0].tolist() != epochs[1].tolist()  # a new order each epoch
    # Groups are shuffled, not kept in file order: a batch mixes files' groups apart from their positions.
    firsts = [_group_of(int(rids[0])) for rids, _ in batches[:half]]
    assert firsts != sorted(firsts)
    # A stream started at step 5 goes on where step 5 of the first one was.
    resumed = _batches(config, 6, start_step=5)
    for (a, ga), (b, gb) in zip(resumed, batches[5:11]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ga, gb)


def test_one_machine_counts_the_rows_it_trains_as_examples(world, tmp_path):
    """`examples` in metrics.json is the rows trained, not steps x batch_size: a grouped batch is 4 whole groups of
    about 5 rows.  One epoch and 5 steps: every row once, the first 5 batches' rows twice."""
    from visitation_runs import train_cli, visits

    model_dir = str(tmp_path / "single")
    steps = GROUPS // PER_BATCH + 5
    train_cli(world, model_dir, f"train.steps={steps}", "train.log_every=8")
    by_count = visits(model_dir)
    assert set(by_count) == {1, 2} and sum(by_count.values()) == FILES * PER_FILE, by_count
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["steps"] == steps
    assert metrics["examples"] == by_count[1] + 2 * by_count[2] < steps * 64
    assert metrics["epochs"] == round(metrics["examples"] / (FILES * PER_FILE), 4)


def test_held_out_rows_come_in_file_order_by_whole_groups(world):
    config = config_lib.load(world)
    batches = _batches(config, 100, split="eval")
    rows = np.concatenate([rids for rids, _ in batches])
    assert sorted(rows.tolist()) == list(range(PER_FILE))  # the held-out file: rids 0..63, each once
    for rids, index in batches:
        for g in set(index.tolist()):
            assert len({r % USERS for r in rids[index == g].tolist()}) == 1


def test_a_group_column_missing_from_a_file_is_refused_naming_file_and_column_before_anything_is_written(
        world, tmp_path):
    with open(world) as f:
        raw = yaml.safe_load(f)
    raw["data"]["group_by"] = ["user", "request_id"]
    raw["data"]["train_files"] = [os.path.join(os.path.dirname(world), "train", "*.csv")]
    raw["data"]["eval_files"] = [os.path.join(os.path.dirname(world), "test", "held.csv")]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataError, match=r"part-00\.csv: data\.group_by names column 'request_id'"):
        make_dataset_fn(config_lib.load(str(config)), "train", 64, True)
    model_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "pfd_tf.cli.train", "--config", str(config), "--model_dir",
                           str(model_dir)], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "part-00.csv: data.group_by names column 'request_id'" in proc.stderr
    assert not model_dir.exists() or list(model_dir.iterdir()) == []


@pytest.mark.parametrize("data, message", [
    ({"groups_per_batch": 4}, "data.groups_per_batch: set without data.group_by"),
    ({"group_by": ["user"], "groups_per_batch": -1}, "data.groups_per_batch: must be >= 0"),
    ({"group_by": ["user", "user"]}, r"data.group_by\[1\]: duplicate column 'user'"),
    ({"group_by": [""]}, r"data.group_by\[0\]: must not be empty"),
    ({"group_by": ["user"], "format": "tfrecord"}, "data.group_by: grouped batches read CSV files"),
    ({"group_by": ["request"], "columns": ["rid", "user", "label"]}, r"data.group_by\[0\]: data.columns has no "
                                                                     "column 'request'"),
])
def test_bad_grouping_keys_are_refused_naming_the_key(world, data, message):
    with open(world) as f:
        raw = yaml.safe_load(f)
    raw["data"].pop("group_by")
    raw["data"].pop("groups_per_batch")
    raw["data"].update(data)
    with pytest.raises(ConfigError, match=message):
        config_lib.from_dict(raw)


# --------------------------------------------------------------------------
# The cluster's tf.data service: whole groups, each row once per epoch
# --------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_the_tf_data_service_hands_out_whole_groups_each_row_once_per_epoch(world):
    """A real dispatcher and two tf.data workers on loopback, read as one training worker reads them: every batch
    is whole groups; the run's two epochs of groups come, each row twice, then only padding (batches of empty
    groups, which a cluster run's drain reads: pfd_tf.cluster.grouped_service), never a row of the next epoch."""
    from pfd_tf._keras import tf
    from pfd_tf.cluster.grouped_service import PADDING_BATCHES

    service = tf.data.experimental.service
    port = _free_port()
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=port))
    workers = [service.WorkerServer(service.WorkerConfig(dispatcher_address=f"localhost:{port}",
                                                         port=_free_port())) for _ in range(2)]
    config = config_lib.load(world)
    steps = 2 * GROUPS // PER_BATCH
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=steps))
    batches = _batches_of(make_dataset_fn(config, "train", 64, True, data_service=f"localhost:{port}"),
                          steps + PADDING_BATCHES)
    _assert_whole_groups(batches, distinct=False, full=False)
    assert all(len(rids) for rids, _ in batches[:steps // 2])  # the run's groups come first
    assert not any(len(rids) for rids, _ in batches[-PADDING_BATCHES // 2:])  # then padding
    counts = collections.Counter(np.concatenate([rids for rids, _ in batches]).tolist())
    assert collections.Counter(counts.values()) == {2: FILES * PER_FILE}
    del dispatcher, workers


def test_a_two_worker_cluster_trains_each_row_once_per_epoch_by_groups(world, tmp_path):
    """pfd-launch (chief, two workers, a parameter server, the tf.data service) with `train.count_visits`: the
    two workers share one pass over the groups a epoch (a worker reading every row would train each four times),
    and every row is trained exactly twice in two epochs: the run goes on past its planned steps until the
    groups a worker held read ahead are trained (pfd_tf.cluster.drain).  `examples` counts the rows trained."""
    from visitation_runs import launch_cli, visits

    model_dir = str(tmp_path / "cluster")
    steps = 2 * GROUPS // PER_BATCH
    launch_cli(world, model_dir, 2, f"train.steps={steps}", f"train.log_every={steps}")
    by_count = visits(model_dir)
    print("ids by times trained:", by_count)
    assert by_count == {2: FILES * PER_FILE}
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["examples"] == 2 * FILES * PER_FILE
    assert metrics["epochs"] == 2.0
    assert metrics["steps"] >= steps
