"""Every config `pfd-data` writes is a promise: trained briefly, its student beats the constant predictor.

Every scenario of `pfd_tf.datasets.scenarios.SCENARIOS` (so a new scenario is covered without a change here),
on worlds 0, 1 and 2, each with its own rates, model and optimizer on a small world (`--rows`), run the way the
README tells a user to run small data (`pfd_tf.small_data`'s recipe: batches of 256, two epochs; the configs'
batches of 1,024 or 2,000 take 3 to 34 steps there, too few to beat the constant predictor's log loss on every
world).  What each run is held to: `beats_the_constant.py`.  KD-DAGFM's phase configs and the files in
`configs/`: `test_shipped_configs_learn.py`; the worlds of several tasks and the MTL baseline's configs:
`test_multi_task_configs_learn.py`.
"""
from __future__ import annotations

import pytest

from beats_the_constant import DEFAULT_ROWS, RECIPE, ROWS, assert_beats_the_constant
from pfd_tf import config as config_lib
from pfd_tf.datasets.scenarios import SCENARIOS

SEEDS = (0, 1, 2)
# The worlds of several tasks, each task checked (test_multi_task_configs_learn.py).
EVERY_TASK = ("multitask",)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - set(EVERY_TASK)))
def test_what_pfd_data_writes_learns(tmp_path, scenario, seed):
    path = SCENARIOS[scenario](str(tmp_path / "world"), rows=ROWS.get(scenario, DEFAULT_ROWS), seed=seed)
    assert_beats_the_constant(config_lib.load(path, RECIPE), str(tmp_path / "run"))
