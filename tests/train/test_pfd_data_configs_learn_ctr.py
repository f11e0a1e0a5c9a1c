"""The `ctr` scenario's config that `pfd-data` writes, on worlds 0, 1 and 2: trained briefly, its student beats
the constant predictor (the promise and the other scenarios: `test_pfd_data_configs_learn.py`; a file of its own
for the suite's time: `beats_the_constant.OWN_FILE`).
"""
from __future__ import annotations

import pytest

from beats_the_constant import SEEDS, assert_pfd_data_config_learns


@pytest.mark.parametrize("seed", SEEDS)
def test_what_pfd_data_writes_for_ctr_learns(tmp_path, seed):
    assert_pfd_data_config_learns(str(tmp_path), "ctr", seed)
