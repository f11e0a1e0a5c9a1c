"""Behavioural tests of the synthetic CTR world (coarse-grained ranking, interacted features)."""
import csv
import dataclasses
import filecmp
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

import pfd_tf  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
from pfd_tf import config as config_lib
from pfd_tf.datasets import ctr, ctr_config, ctr_world
from pfd_tf.datasets.ctr import simulate_ctr
from pfd_tf.datasets.ctr_world import CtrWorld

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS, DAYS = 20_000, 8
HIST = ctr_world.HIST_SEQUENCES
INTERACTED = {"u_cate_clicks_24h", "u_shop_clicks_24h", "u_cate_clicks_7d", "u_shop_clicks_7d",
              "u_item_clicked_before", "u_cate_purchases_30d", "u_cate_last_age_bucket"}


def read_csvs(pattern):
    """(header, {column: np.array of str}) of all CSV files matching pattern."""
    rows, header = [], None
    for path in sorted(glob.glob(pattern), key=os.path.basename):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            file_header = next(reader)
            assert header in (None, file_header)
            header = file_header
            rows.extend(reader)
    return header, {k: np.array(v, dtype=object) for k, v in zip(header, zip(*rows))}


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


def logistic_auc(features, label, train, steps=300):
    """AUC on ~train rows of a logistic regression fit by gradient descent on train rows."""
    x = np.column_stack(features).astype(np.float64)
    x = np.column_stack([np.ones(len(x)), (x - x[train].mean(0)) / (x[train].std(0) + 1e-9)])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        w -= 0.5 * x[train].T @ (1 / (1 + np.exp(-x[train] @ w)) - label[train]) / train.sum()
    return auc(x[~train] @ w, label[~train])


def split(text):
    return text.split("|") if text else []


@pytest.fixture(scope="module")
def world():
    return CtrWorld.for_rows(ROWS, DAYS)


@pytest.fixture(scope="module")
def sim(world):
    return simulate_ctr(world, seed=0, latents=True)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("ctr_seed0"))
    ctr.generate_ctr(out_dir, rows=ROWS, seed=0, days=DAYS)
    return out_dir


@pytest.fixture(scope="module")
def data(out):
    """All rows in day order (train days, then the test day)."""
    return read_csvs(os.path.join(out, "*", "day-*.csv"))[1]


@pytest.fixture(scope="module")
def config(out):
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_same_seed_same_bytes_other_seed_differs(out, tmp_path):
    again, other = str(tmp_path / "again"), str(tmp_path / "other")
    ctr.generate_ctr(again, rows=ROWS, seed=0, days=DAYS)
    ctr.generate_ctr(other, rows=ROWS, seed=1, days=DAYS)
    files = sorted(os.path.relpath(p, out)
                   for p in glob.glob(os.path.join(out, "**", "*.*"), recursive=True))
    assert "config.yaml" in files and len(files) == DAYS + 1
    match, mismatch, errors = filecmp.cmpfiles(out, again, files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(files)
    _, mismatch, _ = filecmp.cmpfiles(out, other, files, shallow=False)
    assert "train/day-00.csv" in mismatch and "test/day-07.csv" in mismatch


def test_simulated_columns_are_what_is_written(sim, data):
    for name in ctr_world.CTR_COLUMNS:
        written = data[name]
        simulated = sim[name]
        if name == "price":
            assert np.allclose(written.astype(float), simulated)
        else:
            assert written.tolist() == simulated.astype(str).tolist(), name


def test_layout_row_counts_and_header(out, config):
    assert sorted(os.listdir(os.path.join(out, "train"))) == [f"day-{d:02d}.csv" for d in range(DAYS - 1)]
    assert sorted(os.listdir(os.path.join(out, "test"))) == [f"day-{DAYS - 1:02d}.csv"]
    expected = [f["name"] for f in config["features"]] + ["day", "click"]
    total = 0
    for path in glob.glob(os.path.join(out, "*", "day-*.csv")):
        header, cols = read_csvs(path)
        assert header == expected
        assert set(cols["day"].astype(int)) == {int(os.path.basename(path)[4:6])}
        total += len(cols["day"])
    assert total == ROWS


def test_config_schema(out, config, world):
    assert config["data"] == {"format": "csv", "train_files": ["train/*.csv"],
                              "eval_files": ["test/*.csv"], "label": "click",
                              "sequence_delimiter": "|"}
    feats = {f["name"]: f for f in config["features"]}
    assert list(feats) == [c.name for c in ctr_world.CTR_FEATURES]
    for name in HIST:
        assert feats[name]["kind"] == "sequence" and feats[name]["max_len"] == ctr_config.BEHAVIOURS_READ
        assert feats[name]["role"] == "regular" and feats[name]["side"] == "user"
    assert feats["hist_item_id"]["hash_buckets"] == feats["item_id"]["hash_buckets"] == 2 * world.n_items
    assert feats["hist_type"]["vocabulary"] == ["click", "purchase"]
    privileged = {n for n, f in feats.items() if f["role"] == "privileged"}
    assert privileged == INTERACTED
    assert all(feats[n]["side"] == "user" for n in privileged)
    for name in ("user_id", "user_age", "user_gender"):
        assert feats[name]["side"] == "user"
    for name in ("item_id", "category_id", "shop_id", "price"):
        assert feats[name]["side"] == "item"
    assert feats["hour"]["side"] == feats["device"]["side"] == "context"
    for f in feats.values():
        assert sum(k in f for k in ("hash_buckets", "vocabulary", "boundaries")) == 1
        if f["kind"] == "numeric":
            b = f["boundaries"]
            assert all(lo < hi for lo, hi in zip(b, b[1:])), f["name"]
    assert feats["u_cate_clicks_24h"]["boundaries"][0] == 0.5  # zero counts get a bucket of their own
    model = config["model"]
    assert model["architecture"] == "two_tower" and model["inner_product_scale"] == 5.0
    assert model["behaviour_items"] == ["hist_item_id", "hist_category_id", "hist_shop_id"]
    assert model["behaviour_side"] == ["hist_age_bucket", "hist_dwell_bucket", "hist_type"]
    assert (model["attention_heads"], model["attention_head_dim"]) == (4, 8)
    assert model["student_private_features"] == ["user_id"] and model["sharing"] == "shared"
    assert model["user_tower"] == model["item_tower"] == model["big_teacher_tower"] == [512, 256, 128]
    assert model["teacher_normalization"] == "batch" and "normalization" not in model  # students: none
    train = config["train"]
    n_train = ROWS - len(read_csvs(os.path.join(out, "test", "*.csv"))[1]["day"])
    assert train["epochs"] == 1 and "steps" not in train  # one epoch, as in the paper
    assert train["learning_rate"] == ctr_config.LEARNING_RATE == 1.6 and train["seed"] == 0
    assert config["distill"] == {"mode": "pfd", "lambda": 0.5, "swap_fraction": 0.125, "temperature": 1.0}
    steps = config_lib.resolve_length(config_lib.load(os.path.join(out, "config.yaml")), n_train).train.steps
    assert steps == round(n_train / 1024)
    loaded = config_lib.load(os.path.join(out, "config.yaml"))
    assert {f.name for f in loaded.privileged_features} == INTERACTED
    assert not INTERACTED & {f.name for f in loaded.student_features}


def test_click_rate_and_value_ranges(data, world):
    assert 0.03 < data["click"].astype(int).mean() < 0.08
    assert set(data["device"]) == {"ios", "android", "pc"}
    assert set(data["hour"].astype(int)) <= set(range(24))
    assert data["price"].astype(float).min() > 0
    assert data["user_id"].astype(int).max() < world.n_users
    assert set(data["u_item_clicked_before"]) == {"0", "1"}
    for name in HIST[3:]:
        vocab = set(next(f for f in ctr_world.CTR_FEATURES if f.name == name).vocabulary)
        assert set(t for s in data[name][:2000] for t in split(s)) <= vocab
    lengths = np.array([len(split(s)) for s in data["hist_item_id"]])
    assert lengths.max() == 50 and (lengths == 0).mean() < 0.1  # 30 warm-up days of history
    assert all(s == "" for name in HIST for s in data[name][lengths == 0])


def test_hist_columns_aligned_most_recent_first_and_strictly_before(sim):
    for i in range(len(sim["time"])):
        seqs = [split(sim[name][i]) for name in HIST + ("hist_time",)]
        n = len(seqs[0])
        assert n <= 50 and all(len(s) == n for s in seqs), i
        times = np.array(seqs[-1], np.int64)
        assert (times < sim["time"][i]).all(), i  # never at or after the impression
        assert (np.diff(times) <= 0).all(), i  # most recent first
        ages = ctr_world.age_bucket(sim["time"][i] - times)
        assert seqs[3] == ages.astype(str).tolist(), i


def brute_force_history(sim, i):
    """Indices (in the event arrays) of the user's behaviours strictly before row i, oldest first."""
    user, t = int(sim["user_id"][i]), sim["time"][i]
    mine = np.flatnonzero(sim["event_user"] == user)
    return mine[sim["event_time"][mine] < t]


def test_hist_sequences_match_brute_force(sim):
    rng = np.random.default_rng(0)
    for i in rng.choice(len(sim["time"]), 150, replace=False):
        earlier = brute_force_history(sim, i)[::-1][:50]  # most recent first
        assert split(sim["hist_item_id"][i]) == sim["event_item"][earlier].astype(str).tolist()
        assert split(sim["hist_category_id"][i]) == sim["event_category"][earlier].astype(str).tolist()
        assert split(sim["hist_shop_id"][i]) == sim["event_shop"][earlier].astype(str).tolist()
        assert split(sim["hist_dwell_bucket"][i]) == sim["event_dwell_bucket"][earlier].astype(str).tolist()
        types = ["purchase" if p else "click" for p in sim["event_purchase"][earlier]]
        assert split(sim["hist_type"][i]) == types


def test_interacted_features_match_brute_force(sim):
    rng = np.random.default_rng(1)
    day, week, month = 86_400, 7 * 86_400, 30 * 86_400
    nonzero = 0
    for i in rng.choice(len(sim["time"]), 300, replace=False):
        t = sim["time"][i]
        ev = brute_force_history(sim, i)
        et = sim["event_time"][ev]
        in_cat = sim["event_category"][ev] == int(sim["category_id"][i])
        in_shop = sim["event_shop"][ev] == int(sim["shop_id"][i])
        assert sim["u_cate_clicks_24h"][i] == np.sum(in_cat & (et >= t - day))
        assert sim["u_shop_clicks_24h"][i] == np.sum(in_shop & (et >= t - day))
        assert sim["u_cate_clicks_7d"][i] == np.sum(in_cat & (et >= t - week))
        assert sim["u_shop_clicks_7d"][i] == np.sum(in_shop & (et >= t - week))
        assert sim["u_item_clicked_before"][i] == int(np.any(sim["event_item"][ev] == int(sim["item_id"][i])))
        bought = sim["event_purchase"][ev].astype(bool)
        assert sim["u_cate_purchases_30d"][i] == np.sum(in_cat & bought & (et >= t - month))
        if in_cat.any():
            expected = str(ctr_world.age_bucket(t - et[in_cat].max()))
        else:
            expected = "none"
        assert sim["u_cate_last_age_bucket"][i] == expected
        nonzero += sim["u_cate_clicks_24h"][i] > 0
    assert nonzero > 20  # the check above was not only about empty windows


def test_interacted_features_are_informative(sim, data):
    y = sim["click"]
    assert auc(sim["u_cate_clicks_24h"], y) > 0.55
    assert auc(sim["u_item_clicked_before"], y) > 0.55
    # In the generative model: the interacted part of the logit adds AUC on top of the rest.
    assert auc(sim["logit"], y) > auc(sim["logit"] - sim["interacted"], y) + 0.02
    # Measured on the data: a logistic regression on user/item-only proxies (fit on the
    # train days, scored on the test day) gains from the interacted features.
    train = sim["day"] < DAYS - 1
    hist_len = np.array([len(split(s)) for s in sim["hist_item_id"]])
    item_n = np.bincount(sim["item_id"].astype(int))[sim["item_id"].astype(int)]
    user_n = np.bincount(sim["user_id"].astype(int))[sim["user_id"].astype(int)]
    proxies = [np.log(sim["price"]), np.log1p(hist_len), np.log(item_n), np.log(user_n),
               sim["hour"], sim["user_age"]]
    interacted = [np.log1p(sim[k]) for k in ctr_world.COUNT_FEATURES]
    interacted.append(sim["u_item_clicked_before"])
    base = logistic_auc(proxies, y, train)
    assert logistic_auc(proxies + interacted, y, train) > base + 0.03


def test_interacted_scale_scales_only_the_interacted_part(world):
    """interacted_scale multiplies the privileged part of the logit and nothing else: the same
    seed draws the same world, impressions and features; only the clicks may differ."""
    one = simulate_ctr(dataclasses.replace(world, interacted_scale=1.0), seed=0, latents=True)
    assert np.abs(one["interacted"]).max() > 0.5
    for scale in (0.0, 2.0):
        scaled = simulate_ctr(dataclasses.replace(world, interacted_scale=scale), seed=0, latents=True)
        np.testing.assert_allclose(scaled["interacted"], scale * one["interacted"], atol=1e-12)
        regular = (scaled["logit"] - scaled["interacted"]) - (one["logit"] - one["interacted"])
        np.testing.assert_allclose(regular, regular[0], atol=1e-9)  # differ by the solved base only
        for name in ("user_id", "item_id", "hist_item_id", "u_cate_clicks_24h", "u_item_clicked_before"):
            assert (scaled[name] == one[name]).all(), name
        assert abs(scaled["click"].mean() - world.click_rate) < 0.01
    with pytest.raises(ValueError, match="interacted_scale"):
        simulate_ctr(dataclasses.replace(world, interacted_scale=-1.0), seed=0)


def test_world_overrides_are_typed_and_bad_ones_named():
    from pfd_tf.datasets.scenarios import world_overrides

    assert world_overrides("ctr", ["interacted_scale=2", "n_users=500", "device_effect=0.1,0,-0.3"]) == {
        "interacted_scale": 2.0, "n_users": 500, "device_effect": (0.1, 0.0, -0.3)}
    assert world_overrides("cvr", []) == {}
    for item, message in [("foo=1", "has no field 'foo'"), ("n_users=1.5", "n_users takes int"),
                          ("interacted_scale", "expected key=value"), ("rows=10", "--rows"),
                          ("device_effect=1,2", "3 comma-separated values")]:
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            world_overrides("ctr", [item])
        assert repr(item) in str(err.value)


def test_world_is_sized_for_rows():
    big = CtrWorld.for_rows(200_000)
    assert (big.n_users, big.n_items, big.n_shops, big.n_categories) == (8_000, 8_000, 800, 100)
    small = CtrWorld.for_rows(2_000, days=3)
    assert small.n_users == 300 and small.days == 3
    with pytest.raises(ValueError):
        simulate_ctr(CtrWorld.for_rows(100, days=1), seed=0)


def test_pipeline_reads_aligned_sequences(out):
    from pfd_tf.data.pipeline import make_dataset_fn

    config = config_lib.load(os.path.join(out, "config.yaml"))
    ids, labels = next(iter(make_dataset_fn(config, "train", 64, training=False)(None)))
    (label,) = labels.values()  # by task name: the one task of data.label
    assert label.shape == (64,)
    valid = [(ids[name].numpy() != 0).sum(axis=1) for name in HIST]
    assert ids["hist_item_id"].shape == (64, ctr_config.BEHAVIOURS_READ)  # the most recent of 50
    for other in valid[1:]:
        assert (other == valid[0]).all()
    assert valid[0].max() > 0


def test_cli_ctr_scenario(tmp_path):
    out = tmp_path / "cli"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "pfd_tf.cli.data", "--scenario", "ctr", "--out", str(out),
         "--rows", "3000", "--seed", "7", "--days", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(out / "config.yaml") in proc.stdout
    with open(out / "config.yaml", encoding="utf-8") as f:
        assert yaml.safe_load(f)["data"]["label"] == "click"
    _, test = read_csvs(str(out / "test" / "*.csv"))
    assert set(test["day"]) == {"2"}

    # --world changes a field of the world; a bad one is named, and nothing is written.
    args = ["--scenario", "ctr", "--rows", "3000", "--seed", "7", "--days", "3"]
    proc = subprocess.run(
        [sys.executable, "-m", "pfd_tf.cli.data", *args, "--out", str(tmp_path / "scaled"),
         "--world", "interacted_scale=0", "--world", "n_shops=50"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "scaled" / "config.yaml", encoding="utf-8") as f:
        buckets = {f["name"]: f.get("hash_buckets") for f in yaml.safe_load(f)["features"]}
    assert buckets["shop_id"] == ctr_config.ctr_hash_buckets(CtrWorld.for_rows(3000, 3, n_shops=50))["shop_id"]
    proc = subprocess.run(
        [sys.executable, "-m", "pfd_tf.cli.data", *args, "--out", str(tmp_path / "bad"),
         "--world", "interacted_scal=0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "'interacted_scal=0'" in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_the_written_config_trains_pfd_md_with_a_target_attention_teacher(out, tmp_path):
    """The world's own config, as written, trains PFD+MD: a DNN teacher that attends
    over the behaviours with the candidate, and a two-tower student without it."""
    from pfd_tf.distill.build import build_distiller
    from pfd_tf.models.target_attention import TargetAttention
    from pfd_tf.models.towers import DenseBatchNorm
    from pfd_tf.models.two_tower import TwoTowerRanker
    from pfd_tf.trainer import train

    overrides = ["distill.mode=pfd_md", "train.steps=2", "train.batch_size=64", "train.eval_steps=2",
                 "model.user_tower=[16,8]", "model.item_tower=[16,8]", "model.big_teacher_tower=[16,8]"]
    config = config_lib.load(os.path.join(out, "config.yaml"), overrides)
    model = build_distiller(config)
    assert isinstance(model.student, TwoTowerRanker)
    (attention,) = [l for l in model.teacher.input_layers if isinstance(l, TargetAttention)]
    assert attention.target_features == ("item_id", "category_id", "shop_id")
    # The teacher's tower is batch-normalized, the student's towers are not (ctr_config.TEACHER_NORMALIZATION).
    assert [type(l) for l in model.teacher.tower.hidden].count(DenseBatchNorm) == 2
    assert not any(isinstance(l, DenseBatchNorm) for t in (model.student.user_tower, model.student.item_tower)
                   for l in t.hidden)
    metrics = train(config, str(tmp_path / "run"), verbose=0)
    assert metrics["student"] is not None and metrics["teacher"] is not None
