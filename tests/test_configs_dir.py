"""The configs shipped in configs/ load, validate, and stay in sync with what pfd-data writes."""
from __future__ import annotations

import glob
import os

import pytest
import yaml

from pfd_tf import config as config_lib
from pfd_tf.data.synthetic import generate_cvr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))))
def test_shipped_config_is_valid(path):
    config = config_lib.load(path)
    assert config.privileged_features and config.student_features


def test_cvr_config_is_what_pfd_data_writes(tmp_path):
    written = yaml.safe_load(open(generate_cvr(str(tmp_path), seed=0)))
    shipped = yaml.safe_load(open(os.path.join(ROOT, "configs", "cvr_synthetic.yaml")))
    for key in ("train_files", "eval_files"):
        assert [p.replace("../runs/cvr/", "") for p in shipped["data"][key]] == written["data"][key]
        shipped["data"][key] = written["data"][key]
    assert shipped == written
