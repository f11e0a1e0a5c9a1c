"""The configs shipped in configs/ load, validate, and stay in sync with what pfd-data writes."""
from __future__ import annotations

import glob
import os

import pytest
import yaml

from pfd_tf import config as config_lib
from pfd_tf.datasets.cvr import generate_cvr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Public CTR datasets without privileged features: their configs distil a bigger teacher (Zhu et al. 2020).
WITHOUT_PRIVILEGED = {"criteo.yaml", "avazu.yaml"}


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))))
def test_shipped_config_is_valid(path):
    config = config_lib.load(path)
    assert config.student_features
    assert bool(config.privileged_features) != (os.path.basename(path) in WITHOUT_PRIVILEGED)


def test_criteo_config_is_the_papers_preprocessing():
    """Section 4.1 of Zhu et al. 2020: the files as distributed, log-square bins, min_count 10, embeddings of 20."""
    config = config_lib.load(os.path.join(ROOT, "configs", "criteo.yaml"))
    data = config.data
    assert data.csv_delimiter == "\t" and not data.header
    assert data.columns == ("label", *[f"I{i}" for i in range(1, 14)], *[f"C{i}" for i in range(1, 27)])
    assert data.train_files == ("../data/criteo/train/*.txt",) and data.eval_files == ("../data/criteo/eval/*.txt",)
    assert [f.name for f in config.features] == list(data.columns[1:])
    for spec in config.features:
        assert spec.min_count == 10 and spec.missing_id and spec.dim == 20, spec.name
        if spec.name.startswith("I"):
            assert spec.transform.value == "log_square" and spec.as_category, spec.name
    assert config.train.batch_size == 2000 and config.train.optimizer.value == "adam"
    assert config.train.learning_rate == 0.001


def test_avazu_config_is_the_papers_preprocessing():
    """Section 4.1: the CSV as distributed (its header), min_count 5, embeddings of 40; hour as hour of day and weekday."""
    config = config_lib.load(os.path.join(ROOT, "configs", "avazu.yaml"))
    assert config.data.header and config.data.label == "click"
    assert config.data.train_files == ("../data/avazu/train/*.csv",)
    derived = {f.name: (f.source, f.derive.value) for f in config.features if f.derive.value != "none"}
    assert derived == {"hour_of_day": ("hour", "hour_of_day"), "weekday": ("hour", "weekday")}
    others = [f for f in config.features if f.name not in derived]
    assert len(others) == 21 and all(f.min_count == 5 and f.dim == 40 for f in others)
    assert "id" not in {f.source for f in config.features}


def test_cvr_config_is_what_pfd_data_writes(tmp_path):
    written = yaml.safe_load(open(generate_cvr(str(tmp_path), seed=0)))
    shipped = yaml.safe_load(open(os.path.join(ROOT, "configs", "cvr_synthetic.yaml")))
    for key in ("train_files", "eval_files"):
        assert [p.replace("../runs/cvr/", "") for p in shipped["data"][key]] == written["data"][key]
        shipped["data"][key] = written["data"][key]
    assert shipped == written


def test_cascade_config_reads_what_pfd_data_writes_for_ctr(tmp_path):
    """configs/cascade_ctr.yaml (one teacher, three students) reads the CTR world's files and features as
    `pfd-data --scenario ctr` writes them (names, kinds, sizes, roles, sides; the hash buckets and numeric
    boundaries follow the default world's size, and a small world is written here, for time)."""
    from pfd_tf.datasets.ctr import generate_ctr

    written = yaml.safe_load(open(generate_ctr(str(tmp_path), rows=400, seed=0)))
    shipped = yaml.safe_load(open(os.path.join(ROOT, "configs", "cascade_ctr.yaml")))
    def described(features):
        return [{k: v for k, v in f.items() if k not in ("boundaries", "hash_buckets")} for f in features]

    assert described(shipped["features"]) == described(written["features"])
    assert shipped["data"]["label"] == written["data"]["label"]
    for key in ("train_files", "eval_files"):
        assert [p.replace("../runs/ctr/", "") for p in shipped["data"][key]] == written["data"][key]
    config = config_lib.load(os.path.join(ROOT, "configs", "cascade_ctr.yaml"))
    assert config.student_names == ("student", "prerank", "recall")
    assert [s.model.value for s in config.students] == ["dnn", "dnn", "two_tower"]
