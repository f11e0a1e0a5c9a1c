"""Every config we ship is a promise: trained briefly, its student beats the constant predictor on held-out rows.

Every file in `configs/` (Criteo- and Avazu-format files of 8,000 rows; KD-DAGFM's three phase configs:
`test_kd_dagfm_phase_configs_learn.py`), each with its own rates, model and optimizer, run the way
the README tells a user to run small data (`pfd_tf.small_data`'s recipe).  What each run is held to:
`beats_the_constant.py`; the configs `pfd-data` writes: `test_pfd_data_configs_learn.py`.
"""
from __future__ import annotations

import glob
import os

import pytest

from beats_the_constant import DEFAULT_ROWS, RECIPE, ROWS, assert_beats_the_constant
from criteo_avazu_files import write_avazu, write_criteo
from pfd_tf import config as config_lib
from pfd_tf.datasets.scenarios import SCENARIOS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# configs/: the data each file reads, which the test writes in its place.
SHIPPED = {"cvr_synthetic.yaml": "cvr", "criteo.yaml": "criteo", "avazu.yaml": "avazu", "cascade_ctr.yaml": "ctr"}
SAMPLE_ROWS = 8_000  # Criteo- and Avazu-format files: the size of the public samples


def _world_for(kind: str, directory: str) -> list[str]:
    """Writes the data a shipped config reads into `directory`; returns the overrides pointing at it."""
    if kind == "criteo":
        write_criteo(directory, rows=SAMPLE_ROWS, seed=0)
        return [f"data.train_files=[{directory}/train/*.txt]", f"data.eval_files=[{directory}/eval/*.txt]"]
    if kind == "avazu":
        write_avazu(directory, rows=SAMPLE_ROWS, seed=0)
        return [f"data.train_files=[{directory}/train/*.csv]", f"data.eval_files=[{directory}/eval/*.csv]"]
    SCENARIOS[kind](directory, rows=ROWS.get(kind, DEFAULT_ROWS), seed=0)
    return [f"data.train_files=[{directory}/train/*.csv]", f"data.eval_files=[{directory}/test/*.csv]"]


def test_every_file_in_configs_is_covered():
    assert sorted(SHIPPED) == sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml")))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_config_learns(tmp_path, name):
    overrides = _world_for(SHIPPED[name], str(tmp_path / "data")) + RECIPE
    config = config_lib.load(os.path.join(ROOT, "configs", name), overrides)
    assert_beats_the_constant(config, str(tmp_path / "run"))
