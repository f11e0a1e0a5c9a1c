"""Which training rows a real loopback cluster trained on, and how often (one machine, exactly:
`test_visitation_one_machine.py`).

Every row of the world carries its own id (`rid`, a categorical feature with
one vocabulary entry per row), and `train.count_visits: rid` makes the train
step count the ids it trained on (`metrics.json`'s `visits`, the checkpoint's
`model/visits`).  A cluster here is `pfd-launch`: chief, workers and a
parameter server as processes on 127.0.0.1, with the real tf.data service.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from visitation_runs import BATCH, ROOT, launch_cli, visits, write_rid_world


@pytest.fixture(scope="module")
def rid_world(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("rids"))
    return directory, *write_rid_world(directory)


# --------------------------------------------------------------------------
# A loopback cluster with the tf.data service: within a batch per worker
# --------------------------------------------------------------------------
def _off_by(counts: dict[int, int], expected: int) -> int:
    """Ids trained on other than `expected` times."""
    return sum(n for times, n in counts.items() if times != expected)


@pytest.mark.parametrize("epochs", [1, 2])
def test_two_worker_cluster_reads_each_row_once_per_epoch(rid_world, epochs):
    directory, config, rows = rid_world
    model_dir = os.path.join(directory, f"cluster_{epochs}")
    launch_cli(config, model_dir, 2, f"train.steps={epochs * rows // BATCH}", "train.log_every=8")
    counts = visits(model_dir)
    print("ids by times trained:", counts)
    # Epoch boundaries inside the run lose nothing.  At its end, what the other worker holds read ahead
    # (a few elements of an eighth of a batch) is not trained, and as many rows of the margin are instead:
    # never more than the margin each way (with 3 whole batches read ahead, 192 were, of 2,048).
    from pfd_tf.cluster.data_service import read_ahead_rows

    assert set(counts) <= {epochs - 1, epochs, epochs + 1}, counts
    assert _off_by(counts, epochs) <= 2 * read_ahead_rows(BATCH, workers=2), counts


def test_a_restarted_chief_reads_the_rows_it_had_not_read(tmp_path):
    """Kill the chief after a checkpoint; the relaunched one restores the counts and reads on."""
    import signal
    import time

    from cluster_runs import committed_step, task_pid

    config, rows = write_rid_world(str(tmp_path), files=32, rows_per_file=128)
    steps = rows // BATCH  # one epoch of 64 steps
    model_dir = str(tmp_path / "run")
    command = [sys.executable, "-m", "launch.cli", "--config", config, "--model_dir", model_dir, "--workers", "2",
               "--ps", "1", "--noevaluator", "--restart-on-failure", "--set", "train.steps_per_execution=1"]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while committed_step(model_dir) < steps // 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    killed_after = committed_step(model_dir)
    assert steps // 2 <= killed_after < steps, "no mid-run checkpoint to kill the chief after"
    os.kill(task_pid(model_dir, "chief"), signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    assert "resumed from" in out
    counts = visits(model_dir)
    print(f"killed after step {killed_after}; ids by times trained:", counts)
    # A chief that replayed the stream would read its first batches again: the rows of the
    # steps before the checkpoint twice, the last ones never (some 2 x killed_after batches off).
    # Reading on, what is off is the file the checkpoint fell in (read again whole), and what the
    # lost chief's job had in flight, each row of it made up by one read twice: the rest of the file
    # each tf.data worker was reading, and what each training worker held (whole batches here: the
    # run is one `fit` call, so only its last blocks travel in small elements); plus the margin.
    from pfd_tf.cluster.data_service import HELD_ELEMENTS, read_ahead_rows

    in_flight = 2 * 128 + 2 * HELD_ELEMENTS * BATCH
    bound = 128 + 2 * in_flight + 2 * read_ahead_rows(BATCH, workers=2)
    assert _off_by(counts, 1) <= bound < 2 * killed_after * BATCH, counts
