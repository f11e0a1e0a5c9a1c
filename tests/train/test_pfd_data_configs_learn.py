"""Every config `pfd-data` writes is a promise: trained briefly, its student beats the constant predictor.

Every scenario of `pfd_tf.datasets.scenarios.SCENARIOS` (so a new scenario is covered without a change here),
on worlds 0, 1 and 2, each with its own rates, model and optimizer on a small world (`--rows`), run the way the
README tells a user to run small data (`pfd_tf.small_data`'s recipe: batches of 256, two epochs; the configs'
batches of 1,024 or 2,000 take 3 to 34 steps there, too few to beat the constant predictor's log loss on every
world).  What each run is held to: `beats_the_constant.py`.  KD-DAGFM's phase configs:
`test_kd_dagfm_phase_configs_learn.py`; the files in `configs/`: `test_shipped_configs_learn.py`; the worlds
of several tasks and the MTL baseline's configs: `test_multi_task_configs_learn.py`.  The longest scenarios
(`beats_the_constant.OWN_FILE`) are trained in `test_pfd_data_configs_learn_<scenario>.py`, each a file of its own.
"""
from __future__ import annotations

import os

import pytest

from beats_the_constant import EVERY_TASK, OWN_FILE, SEEDS, assert_pfd_data_config_learns
from pfd_tf.datasets.scenarios import SCENARIOS


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - set(EVERY_TASK) - set(OWN_FILE)))
def test_what_pfd_data_writes_learns(tmp_path, scenario, seed):
    assert_pfd_data_config_learns(str(tmp_path), scenario, seed)


def test_every_scenario_is_trained_in_one_of_the_files():
    """OWN_FILE's scenarios are trained in `test_pfd_data_configs_learn_<scenario>.py`: each such file exists."""
    here = os.path.dirname(os.path.abspath(__file__))
    assert set(OWN_FILE) <= set(SCENARIOS) - set(EVERY_TASK)
    for scenario in OWN_FILE:
        assert os.path.exists(os.path.join(here, f"test_pfd_data_configs_learn_{scenario}.py")), scenario
