"""Which training rows a one-machine run trained on, and how often, exactly: across `fit` calls and across a
resume (the loopback cluster's: `test_visitation.py`; the world: `visitation_runs.py`).
"""
from __future__ import annotations

import os

import pytest

from visitation_runs import BATCH, train_cli, visits, write_rid_world


@pytest.fixture(scope="module")
def rid_world(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("rids"))
    return directory, *write_rid_world(directory)


# --------------------------------------------------------------------------
# One machine: exact
# --------------------------------------------------------------------------
def test_one_machine_reads_each_row_once_per_epoch_across_fit_calls(rid_world):
    directory, config, rows = rid_world
    steps = rows // BATCH  # one epoch; log_every 10 makes two `fit` calls (3 x 10 steps, then 2)
    model_dir = os.path.join(directory, "single_one_epoch")
    train_cli(config, model_dir, "train.log_every=10")
    assert visits(model_dir) == {1: rows}
    model_dir = os.path.join(directory, "single_two_epochs")
    train_cli(config, model_dir, f"train.steps={2 * steps}", "train.log_every=10")
    assert visits(model_dir) == {2: rows}


def test_one_machine_resumed_run_reads_on(rid_world):
    directory, config, rows = rid_world
    steps = rows // BATCH
    model_dir = os.path.join(directory, "single_resumed")
    train_cli(config, model_dir, f"train.steps={steps // 2}")
    assert visits(model_dir) == {0: rows // 2, 1: rows // 2}
    train_cli(config, model_dir)  # the same model_dir, to the full epoch: resumes from the checkpoint
    assert visits(model_dir) == {1: rows}
