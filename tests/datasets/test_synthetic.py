"""Behavioural tests of the synthetic CVR world and the `pfd-data` CLI."""
import csv
import filecmp
import glob
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
from pfd_tf.datasets import cvr, cvr_world, train_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS, DAYS = 20_000, 8


def read_csvs(pattern):
    """(header, {column: np.array of str}) of all CSV files matching pattern."""
    rows, header = [], None
    for path in sorted(glob.glob(pattern)):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            file_header = next(reader)
            assert header in (None, file_header)
            header = file_header
            rows.extend(reader)
    return header, {k: np.array(v) for k, v in zip(header, zip(*rows))}


def auc(score, label):
    """Area under the ROC curve with tied scores sharing their mean rank."""
    score, label = np.asarray(score, np.float64), np.asarray(label) == 1
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]
    n_pos = label.sum()
    n_neg = len(label) - n_pos
    return (ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def logistic_auc(features, label, steps=300):
    """Training AUC of a logistic regression fit by gradient descent."""
    x = np.column_stack(features).astype(np.float64)
    x = np.column_stack([np.ones(len(x)), (x - x.mean(0)) / x.std(0)])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        w -= 0.5 * x.T @ (1 / (1 + np.exp(-x @ w)) - label) / len(label)
    return auc(x @ w, label)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("cvr_seed0"))
    cvr.generate_cvr(out_dir, rows=ROWS, seed=0, days=DAYS)
    return out_dir


@pytest.fixture(scope="module")
def data(out):
    _, cols = read_csvs(os.path.join(out, "*", "*.csv"))
    return cols


@pytest.fixture(scope="module")
def config(out):
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_same_seed_same_bytes_other_seed_differs(out, tmp_path):
    again, other = str(tmp_path / "again"), str(tmp_path / "other")
    cvr.generate_cvr(again, rows=ROWS, seed=0, days=DAYS)
    cvr.generate_cvr(other, rows=ROWS, seed=1, days=DAYS)
    files = sorted(os.path.relpath(p, out) for p in glob.glob(os.path.join(out, "**", "*.*"),
                                                              recursive=True))
    assert {"config.yaml", "config_mtl.yaml"} <= set(files) and len(files) == DAYS + 2  # + the MTL baseline
    match, mismatch, errors = filecmp.cmpfiles(out, again, files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(files)
    _, mismatch, _ = filecmp.cmpfiles(out, other, files, shallow=False)
    assert "train/day-00.csv" in mismatch and "test/day-07.csv" in mismatch


def test_layout_row_counts_and_header(out, config):
    train = sorted(os.listdir(os.path.join(out, "train")))
    test = sorted(os.listdir(os.path.join(out, "test")))
    assert train == [f"day-{d:02d}.csv" for d in range(DAYS - 1)]
    assert test == [f"day-{DAYS - 1:02d}.csv"]
    expected = [f["name"] for f in config["features"]] + ["day", config["data"]["label"]]
    total = 0
    for path in glob.glob(os.path.join(out, "*", "day-*.csv")):
        header, cols = read_csvs(path)
        assert header == expected
        day = int(os.path.basename(path)[4:6])
        assert set(cols["day"].astype(int)) == {day}
        total += len(cols["day"])
    assert total == ROWS


def test_config_schema(config):
    assert config["data"] == {"format": "csv", "train_files": ["train/*.csv"],
                              "eval_files": ["test/*.csv"], "label": "purchase",
                              "sequence_delimiter": "|"}
    feats = {f["name"]: f for f in config["features"]}
    assert list(feats) == [c.name for c in cvr_world.CVR_FEATURES]
    world = cvr_world.CvrWorld.for_rows(ROWS, DAYS)
    assert feats["user_id"]["hash_buckets"] == 2 * world.n_users
    assert feats["recent_categories"]["kind"] == "sequence"
    assert feats["recent_categories"]["max_len"] == 10
    assert feats["device"]["vocabulary"] == ["ios", "android", "pc"]
    assert feats["added_to_cart"]["vocabulary"] == ["0", "1"]
    privileged = {n for n, f in feats.items() if f["role"] == "privileged"}
    assert privileged == {"dwell_time", "viewed_comments", "chatted_with_seller",
                          "added_to_cart", "images_viewed"}
    for f in feats.values():
        assert f["side"] in ("user", "item", "context")
        assert sum(k in f for k in ("hash_buckets", "vocabulary", "boundaries")) == 1
        if f["kind"] == "numeric":
            b = f["boundaries"]
            assert len(b) >= 5 and all(isinstance(x, float) for x in b)
            assert all(lo < hi for lo, hi in zip(b, b[1:]))
    assert len(feats["price"]["boundaries"]) == 20
    train = config["train"]
    assert train["epochs"] == train_config.EPOCHS and train["seed"] == 0 and train["batch_size"] == 1024
    assert "steps" not in train and train["warmup_fraction"] == 0.1
    assert config["distill"]["swap_fraction"] == 0.125
    assert config["distill"]["mode"] == "pfd"


def test_columns_look_like_the_declared_features(data):
    world = cvr_world.CvrWorld.for_rows(ROWS, DAYS)
    assert set(data["device"]) == {"ios", "android", "pc"}
    assert set(data["hour"].astype(int)) <= set(range(24))
    assert set(data["user_power"].astype(int)) == set(range(5))
    rating = data["item_rating"].astype(float)
    assert rating.min() >= 1 and rating.max() <= 5
    price = data["price"].astype(float)
    assert price.min() > 0 and np.quantile(price, 0.99) > 20 * np.quantile(price, 0.01)
    assert int(data["user_id"].astype(int).max()) < world.n_users
    recent = data["recent_categories"]
    assert 0.02 < np.mean(recent == "") < 0.3
    for seq in recent[:2000]:
        ids = [int(t) for t in seq.split("|")] if seq else []
        assert len(ids) <= 10 and len(set(ids)) == len(ids)
        assert all(0 <= i < world.n_categories for i in ids)


def test_purchase_rate_is_sane(data):
    assert 0.04 < data["purchase"].astype(int).mean() < 0.11


def test_privileged_features_are_informative(data):
    y = data["purchase"].astype(int)
    assert auc(data["added_to_cart"].astype(int), y) > 0.65
    privileged = [np.log(data["dwell_time"].astype(float)), data["images_viewed"].astype(float)]
    privileged += [data[k].astype(float) for k in
                   ("viewed_comments", "chatted_with_seller", "added_to_cart")]
    assert logistic_auc(privileged, y) > 0.75


def test_dwell_time_misleads_without_price(data):
    y = data["purchase"].astype(int)
    log_price = np.log(data["price"].astype(float))
    log_dwell = np.log(data["dwell_time"].astype(float))
    bucket = np.digitize(log_price, np.quantile(log_price, [0.2, 0.4, 0.6, 0.8]))
    # Within a price bucket, longer dwell means more purchases...
    for b in range(5):
        assert auc(log_dwell[bucket == b], y[bucket == b]) > 0.65
    # ...but across items, expensive ones get longer dwell and fewer purchases.
    assert np.corrcoef(log_price, log_dwell)[0, 1] > 0.3
    cheap, pricey = bucket == 0, bucket == 4
    assert np.median(log_dwell[pricey]) > np.median(log_dwell[cheap]) + 0.5
    assert y[pricey].mean() < 0.6 * y[cheap].mean()
    # So the regular feature (price) is what makes dwell time really useful.
    assert logistic_auc([log_dwell, log_price], y) > logistic_auc([log_dwell], y) + 0.05


def test_world_is_sized_for_rows():
    big = cvr_world.CvrWorld.for_rows(200_000)
    assert (big.n_users, big.n_items, big.n_shops, big.n_categories) == (10_000, 10_000,
                                                                         1_000, 100)
    small = cvr_world.CvrWorld.for_rows(2_000, days=3)
    assert small.n_users == 500 and small.days == 3
    with pytest.raises(ValueError):
        cvr.simulate_cvr(cvr_world.CvrWorld.for_rows(100, days=1), seed=0)


def test_generating_200k_rows_takes_under_10_seconds(tmp_path):
    start = time.perf_counter()
    cvr.generate_cvr(str(tmp_path), rows=200_000, seed=3)
    assert time.perf_counter() - start < 10


def test_cli_writes_dataset(tmp_path):
    out = tmp_path / "cli"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get(
        "PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "pfd_tf.cli.data", "--scenario", "cvr", "--out", str(out),
         "--rows", "5000", "--seed", "7", "--days", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(out / "config.yaml") in proc.stdout
    with open(out / "config.yaml", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    assert config["train"]["seed"] == 7
    for feat in config["features"]:
        if "boundaries" in feat:
            b = feat["boundaries"]
            assert all(lo < hi for lo, hi in zip(b, b[1:])), feat["name"]
    _, train = read_csvs(str(out / "train" / "*.csv"))
    _, test = read_csvs(str(out / "test" / "*.csv"))
    assert len(train["day"]) + len(test["day"]) == 5000
    assert set(test["day"]) == {"3"} and "3" not in set(train["day"])
