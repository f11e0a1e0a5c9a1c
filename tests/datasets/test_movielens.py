"""MovieLens-1M loader: tiny hand-written .dat files (the real data is never shipped)."""
import csv
import filecmp
import glob
import os
import subprocess
import sys

import pytest
import yaml

import pfd_tf  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
from pfd_tf.names import DEFAULT_TASK
from pfd_tf import config as config_lib
from pfd_tf.datasets import movielens
from pfd_tf.data.pipeline import DataError, make_dataset_fn

from movielens_files import DAY, MOVIES, RATINGS, T0, write_movielens

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HIST = ("hist_movie_id", "hist_genre", "hist_rating", "hist_age_bucket")
PRIVILEGED = {"u_genre_ratings", "u_genre_ratings_30d", "u_genre_mean_rating", "u_genre_liked_frac"}


def read_csvs(pattern):
    rows, header = [], None
    for path in sorted(glob.glob(pattern)):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            file_header = next(reader)
            assert header in (None, file_header)
            header = file_header
            rows.extend(dict(zip(header, r)) for r in reader)
    return header, rows


def split(text):
    return text.split("|") if text else []


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    base = tmp_path_factory.mktemp("ml")
    src = write_movielens(base / "src")
    config_path = movielens.prepare_movielens(src, str(base / "out"), test_fraction=0.2)
    return src, str(base / "out"), config_path


@pytest.fixture(scope="module")
def rows(prepared):
    _, out, _ = prepared
    _, train = read_csvs(os.path.join(out, "train", "*.csv"))
    _, test = read_csvs(os.path.join(out, "test", "*.csv"))
    return train, test


def earlier(user, t):
    """The user's ratings strictly before t, most recent first (ties: larger movie id first)."""
    mine = sorted((ts, m, r) for u, m, r, ts in RATINGS if u == user and ts < t)
    return mine[::-1]


def genres(movie):
    return set(MOVIES[movie][1].split("|"))


def test_labels_and_dropped_threes(rows):
    train, test = rows
    everything = train + test
    labelled = [(u, m, r, t) for u, m, r, t in RATINGS if r != 3]
    assert len(everything) == len(labelled)
    got = sorted((int(r["user_id"]), int(r["movie_id"]), int(r["timestamp"]), int(r["liked"]))
                 for r in everything)
    assert got == sorted((u, m, t, int(r >= 4)) for u, m, r, t in labelled)


def test_time_split_holds_out_the_latest_ratings(rows, prepared, tmp_path):
    train, test = rows
    train_ts = [int(r["timestamp"]) for r in train]
    test_ts = [int(r["timestamp"]) for r in test]
    assert max(train_ts) < min(test_ts)
    n = len(train) + len(test)
    assert round(0.2 * n) <= len(test) < round(0.2 * n) + 3  # only ties at the cut add rows
    assert train_ts == sorted(train_ts) and test_ts == sorted(test_ts)
    src, _, _ = prepared
    out = tmp_path / "half"
    movielens.prepare_movielens(src, str(out), test_fraction=0.5)
    _, half = read_csvs(str(out / "test" / "*.csv"))
    assert len(half) >= n // 2 > len(test)
    with pytest.raises(ValueError, match="test_fraction"):
        movielens.prepare_movielens(src, str(tmp_path / "bad"), test_fraction=1.0)


def test_same_input_same_bytes(prepared, tmp_path):
    src, out, _ = prepared
    again = tmp_path / "again"
    movielens.prepare_movielens(src, str(again), test_fraction=0.2)
    files = sorted(os.path.relpath(p, out) for p in glob.glob(os.path.join(out, "**", "*.*"), recursive=True))
    match, mismatch, errors = filecmp.cmpfiles(out, str(again), files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(files) >= 3


def test_regular_features(rows):
    train, test = rows
    by_key = {(r["user_id"], r["movie_id"], r["timestamp"]): r for r in train + test}
    row = by_key[("3", "3", str(T0 + 50 * DAY))]
    assert (row["gender"], row["age"], row["occupation"], row["zip_prefix"]) == ("M", "25", "15", "551")
    assert row["genres"] == "Action|Crime|Thriller" and row["year"] == "1995"
    assert by_key[("1", "4", str(T0 + 10))]["year"] == "2001"  # latin-1 title
    assert by_key[("1", "6", str(T0 + 40 * DAY + 60))]["year"] == "0"  # no year in the title


def test_history_sequences_match_brute_force(rows):
    train, test = rows
    lengths = []
    for row in train + test:
        user, t = int(row["user_id"]), int(row["timestamp"])
        past = earlier(user, t)[:50]
        seqs = {name: split(row[name]) for name in HIST}
        assert seqs["hist_movie_id"] == [str(m) for _, m, _ in past]
        assert seqs["hist_genre"] == [MOVIES[m][1].split("|")[0] for _, m, _ in past]
        assert seqs["hist_rating"] == [str(r) for _, _, r in past]
        minutes = [(t - ts) / 60 for ts, _, _ in past]
        assert seqs["hist_age_bucket"] == [str(max(b for b in range(10) if 4 ** b - 1 <= x)) for x in minutes]
        assert all(ts < t for ts, _, _ in past)  # never at or after the rating
        lengths.append(len(past))
    assert max(lengths) == 50 and min(lengths) == 0
    # Same-second ratings are not history of each other: user 1's movie 4 sees only movie 1.
    row = next(r for r in train if r["user_id"] == "1" and r["movie_id"] == "4")
    assert row["hist_movie_id"] == "1"


def test_privileged_features_match_brute_force(rows):
    train, test = rows
    for row in train + test:
        user, movie, t = int(row["user_id"]), int(row["movie_id"]), int(row["timestamp"])
        shared = [(ts, r, len(genres(m) & genres(movie))) for ts, m, r in earlier(user, t)]
        count = sum(k for _, _, k in shared)
        assert int(row["u_genre_ratings"]) == count
        assert int(row["u_genre_ratings_30d"]) == sum(k for ts, _, k in shared if ts >= t - 30 * DAY)
        if count:
            assert float(row["u_genre_mean_rating"]) == pytest.approx(
                sum(r * k for _, r, k in shared) / count, abs=1e-3)
            assert float(row["u_genre_liked_frac"]) == pytest.approx(
                sum(k for _, r, k in shared if r >= 4) / count, abs=1e-3)
        else:
            assert row["u_genre_mean_rating"] == row["u_genre_liked_frac"] == "-1.000"
    # By hand: user 1 rates Jumanji (Adventure|Children's|Fantasy) after Toy Story (5 stars,
    # shares Children's), Amelie and Sabrina (no shared genre).
    row = next(r for r in train if r["user_id"] == "1" and r["movie_id"] == "2")
    assert (row["u_genre_ratings"], row["u_genre_mean_rating"], row["u_genre_liked_frac"]) == (
        "1", "5.000", "1.000")
    # User 1's Drama 40 days later: no earlier Drama.
    row = next(r for r in train + test if r["user_id"] == "1" and r["movie_id"] == "6")
    assert row["u_genre_ratings"] == "0"


def test_config_loads_and_pipeline_yields_batches(prepared):
    _, out, config_path = prepared
    with open(config_path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    header = read_csvs(os.path.join(out, "train", "*.csv"))[0]
    assert header == [f["name"] for f in raw["features"]] + ["timestamp", "liked"]
    config = config_lib.load(config_path)
    assert config.data.label == "liked"
    assert {f.name for f in config.privileged_features} == PRIVILEGED
    assert all(f.side.value == "user" for f in config.privileged_features)
    assert config.feature("hist_movie_id").max_len == 50
    assert config.feature("genres").max_len == 3
    assert "Children's" in config.feature("genres").vocabulary
    assert config.model.student_private_features == ("user_id",)
    batches = list(make_dataset_fn(config, "train", 32, training=False)(None))
    assert sum(int(label[DEFAULT_TASK].shape[0]) for _, label in batches) == len(read_csvs(
        os.path.join(out, "train", "*.csv"))[1])
    ids, label = batches[0]
    assert ids["hist_movie_id"].shape == (32, 50) and label[DEFAULT_TASK].shape == (32,)
    valid = [(ids[name].numpy() != 0).sum(axis=1) for name in HIST]
    assert all((v == valid[0]).all() for v in valid)
    assert list(make_dataset_fn(config, "eval", 32, training=False)(None))


@pytest.mark.parametrize("name,line,text,match", [
    ("ratings.dat", 3, "1::2::5", r"ratings\.dat: line 3: expected 4 '::'-separated fields"),
    ("ratings.dat", 2, "1::x::5::978300000", r"ratings\.dat: line 2: MovieID 'x' is not an integer"),
    ("ratings.dat", 4, "9::1::5::978300000", r"ratings\.dat: line 4: UserID 9 is not in users\.dat"),
    ("ratings.dat", 1, "1::1::7::978300000", r"ratings\.dat: line 1: Rating 7"),
    ("users.dat", 2, "two::M::25::1::12345", r"users\.dat: line 2: UserID 'two' is not an integer"),
    ("users.dat", 3, "3::M::25::1", r"users\.dat: line 3: expected 5"),
    ("movies.dat", 5, "5::Sabrina (1995)", r"movies\.dat: line 5: expected 3"),
    ("movies.dat", 1, "1.5::Toy Story (1995)::Comedy", r"movies\.dat: line 1: MovieID '1\.5'"),
])
def test_malformed_line_names_file_and_line(tmp_path, name, line, text, match):
    src = write_movielens(tmp_path / "src", shuffle=False)
    path = os.path.join(src, name)
    with open(path, encoding="latin-1") as f:
        lines = f.read().splitlines()
    lines[line - 1] = text
    with open(path, "w", encoding="latin-1") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match) as err:
        movielens.prepare_movielens(src, str(tmp_path / "out"))
    assert path in str(err.value)


def test_missing_file_is_a_data_error(tmp_path):
    src = write_movielens(tmp_path / "src")
    os.remove(os.path.join(src, "movies.dat"))
    with pytest.raises(DataError, match="movies.dat"):
        movielens.prepare_movielens(src, str(tmp_path / "out"))


def test_cli(tmp_path):
    src = write_movielens(tmp_path / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pfd_tf.datasets.movielens", "--src", src, "--out", str(out),
         "--test_fraction", "0.3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(out / "config.yaml") in proc.stdout
    assert os.path.exists(out / "test" / "part-00.csv") and glob.glob(str(out / "train" / "part-*.csv"))
    with open(os.path.join(src, "ratings.dat"), "a", encoding="latin-1") as f:
        f.write("1::2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pfd_tf.datasets.movielens", "--src", src, "--out", str(tmp_path / "o2")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "ratings.dat: line 74" in proc.stderr


def test_two_tower_trains_and_exports_a_retrieval_model_on_movielens(prepared, tmp_path):
    from pfd_tf._keras import tf
    from pfd_tf.trainer import train

    _, _, config_path = prepared
    config = config_lib.load(config_path, ["train.steps=4", "train.log_every=2", "train.batch_size=16",
                                           "model.user_tower=[8,4]", "model.item_tower=[8,4]",
                                           "model.attention_heads=2", "model.attention_head_dim=4",
                                           "model.retrieval_k=3"])
    metrics = train(config, str(tmp_path / "run"), verbose=0)
    assert metrics["steps"] == 4 and metrics["teacher"] is not None
    retrieval = tf.saved_model.load(str(tmp_path / "run" / "export" / "retrieval")).signatures["serving_default"]
    inputs = set(retrieval.structured_input_signature[1])
    assert "hist_movie_id" in inputs and "movie_id" not in inputs
    assert not inputs & PRIVILEGED
    import numpy as np

    index = np.load(tmp_path / "run" / "export" / "item_index.npz")
    assert set(index["ids"]) <= {str(m) for m in range(1, 100)} and len(index["ids"]) > 3
