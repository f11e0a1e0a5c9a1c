"""The configs of several tasks that `pfd-data` writes are promises too: each task beats the constant predictor.

The multitask world's `config.yaml` (CrossDistil on PLE), its `config_pfd.yaml` (a PLE teacher on the
privileged features) and `config_mtl.yaml` (the PFD paper's MTL baseline), and the CVR world's
`config_mtl.yaml`, trained by the small-data recipe as in `test_pfd_data_configs_learn.py`.  Apart from it so
that the two test processes share the learning runs (`pytest.ini`: a file stays in one process).
"""
from __future__ import annotations

import os

import pytest

from beats_the_constant import RECIPE, ROWS, assert_beats_the_constant, constant_logloss
from pfd_tf import config as config_lib
from pfd_tf.datasets.scenarios import SCENARIOS

SEEDS = (0, 1, 2)
MULTITASK_ROWS = 40_000


def _every_task_beats_the_constant(config: config_lib.Config, model_dir: str) -> None:
    from pfd_tf.trainer import train

    metrics = train(config, model_dir, verbose=0, export=False)
    for task in config.task_specs:
        if task.kind.value != "binary":
            continue
        student, constant = metrics["tasks"][task.name]["student"], constant_logloss(config, task.label)
        print(f"held-out {task.name}: log loss {student['logloss']:.4f} (constant {constant:.4f}), AUC {student['auc']}")
        assert student["logloss"] < constant and student["auc"] > 0.5, (task.name, student, constant)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_task_of_the_multitask_world_learns(tmp_path, seed):
    """The student beats the constant predictor on every task's held-out
    labels (log loss below the task's constant, AUC above 0.5).  The multitask world's config.yaml trains
    CrossDistil on PLE; its margins are thin: at 40,000 rows, worlds 0-2, like 0.4943 / 0.4955 / 0.4970 against
    0.4973 / 0.5007 / 0.5032 and buy 0.1907 / 0.1962 / 0.1883 against 0.1979 / 0.1964 / 0.1929 (at 20,000 rows
    the PFD config's buy was above its constant; at 60,000 CrossDistil's like on world 2, 0.4990 against 0.4984):
    the like task's AUC is about 0.6 at these sizes, so its log loss can fall little below the constant's."""
    path = SCENARIOS["multitask"](str(tmp_path / "world"), rows=MULTITASK_ROWS, seed=seed)
    _every_task_beats_the_constant(config_lib.load(path, RECIPE), str(tmp_path / "run"))


@pytest.mark.parametrize("name", ["config_pfd.yaml", "config_mtl.yaml"])
def test_the_multitask_world_s_other_configs_learn(tmp_path, name):
    """PFD on PLE and the MTL baseline beside the multitask world's config.yaml, on world 0 only (the suite's time;
    the CrossDistil config above runs on every world): every binary task beats the constant predictor."""
    SCENARIOS["multitask"](str(tmp_path / "world"), rows=MULTITASK_ROWS, seed=0)
    config = config_lib.load(os.path.join(str(tmp_path / "world"), name), RECIPE)
    _every_task_beats_the_constant(config, str(tmp_path / "run"))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mtl_baseline_beside_the_cvr_config_learns(tmp_path, seed):
    """`config_mtl.yaml`, the PFD paper's MTL baseline written beside the CVR world's config
    (`pfd_tf.datasets.mtl_baseline_config`): its served student beats the constant predictor."""
    SCENARIOS["cvr"](str(tmp_path / "world"), rows=ROWS["cvr"], seed=seed)
    config = config_lib.load(str(tmp_path / "world" / "config_mtl.yaml"), RECIPE)
    assert_beats_the_constant(config, str(tmp_path / "run"))
