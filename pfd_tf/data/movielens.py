"""MovieLens-1M as a PFD dataset: time-split CSVs + config.yaml.

    python -m pfd_tf.data.movielens --src ml-1m/ --out data/ml1m [--test_fraction 0.1] [--overwrite]

MovieLens is not shipped (its licence forbids redistribution): point ``--src``
at a directory holding the three files of the official ``ml-1m`` archive:

* ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``
* ``users.dat``: ``UserID::Gender::Age::Occupation::Zip-code``
* ``movies.dat``: ``MovieID::Title::Genres`` (genres ``|``-separated, latin-1)

One row per rating, like the CTR task of the PFD paper (Section 3): label
``liked`` = 1 for ratings >= 4, 0 for ratings <= 2; ratings of 3 are dropped
as rows (but stay in the users' histories). Rows are in time order; the last
``test_fraction`` of them (by timestamp, never splitting one second between
train and test) form the held-out ``test/part-00.csv``, the rest
``train/part-XX.csv``.

Regular features (available at serving time, two-tower friendly):

* user side: ``user_id``, ``gender``, ``age``, ``occupation``, ``zip_prefix``
  (first 3 characters of the zip code), and the user's last 50 ratings
  strictly before this one, most recent first, as parallel ``|``-joined
  sequences: ``hist_movie_id``, ``hist_genre`` (the movie's first listed
  genre), ``hist_rating`` and ``hist_age_bucket`` (time since that rating,
  log-bucketed: bucket b covers [4^b - 1, 4^(b+1) - 1) minutes, 9 is older);
* item side: ``movie_id``, ``genres`` (a sequence), ``year`` (from the
  title, 0 when the title has none).

Privileged interacted features (user x movie, so the student's towers cannot
see them), from the user's ratings strictly before this one's timestamp.
"In this movie's genres" sums over the movie's genres g of the user's earlier
ratings of movies of genre g, so an earlier movie counts once per genre it
shares with this one:

* ``u_genre_ratings``: that count;
* ``u_genre_ratings_30d``: the same over the last 30 days only;
* ``u_genre_mean_rating``: the mean of those ratings (-1 when there are none);
* ``u_genre_liked_frac``: the share of them that are >= 4 (-1 when none).

A malformed line (wrong number of ``::`` fields, a non-integer id, rating or
timestamp, an unknown or repeated id) raises :class:`DataError` naming the
file and line.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import sys

import numpy as np
import yaml

from pfd_tf.data.pipeline import DataError
from pfd_tf.data.synthetic import (
    Column,
    _ConfigDumper,
    _vocab,
    feature_config,
    quantile_boundaries,
    run_config,
)
from pfd_tf.data.synthetic_ctr import MODEL, TokenWindows, WindowStats, count_boundaries, joined_digits

LABEL = "liked"
TIMESTAMP = "timestamp"
HIST_MAX_LEN = 50
AGE_BUCKETS = 10
WINDOW_30D = 30 * 86_400
RATINGS = tuple(str(r) for r in range(1, 6))
TRAIN_PART_ROWS = 100_000  # rows per train file (at most 8 files)
NO_GENRE = "(no genres listed)"  # a movie without genres (keeps the sequences aligned)
_YEAR = re.compile(r"\((\d{4})\)\s*$")


# --------------------------------------------------------------------------
# Reading the .dat files
# --------------------------------------------------------------------------
def _lines(path: str, fields: tuple[str, ...]):
    """Yields (line number, fields) of a '::'-separated file; blank lines are skipped."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such MovieLens file")
    with open(path, encoding="latin-1", newline="") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("::")
            if len(parts) != len(fields):
                raise DataError(
                    f"{path}: line {number}: expected {len(fields)} '::'-separated fields "
                    f"({'::'.join(fields)}), found {len(parts)}")
            yield number, parts


def _int(path: str, number: int, field: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path}: line {number}: {field} {value!r} is not an integer") from None


def _check_csv_safe(path: str, number: int, field: str, value: str) -> None:
    bad = [c for c in ',"\n' if c in value]
    if bad:
        raise DataError(f"{path}: line {number}: {field} {value!r} holds {bad[0]!r}, "
                        "which the CSV output cannot carry")


def read_users(path: str) -> dict[str, np.ndarray]:
    """users.dat -> columns user_id, gender, age, occupation, zip (sorted by user_id)."""
    rows, seen = [], {}
    for number, (uid, gender, age, occupation, zipcode) in _lines(
            path, ("UserID", "Gender", "Age", "Occupation", "Zip-code")):
        user = _int(path, number, "UserID", uid)
        if user in seen:
            raise DataError(f"{path}: line {number}: UserID {user} repeats line {seen[user]}")
        seen[user] = number
        _check_csv_safe(path, number, "Gender", gender)
        _check_csv_safe(path, number, "Zip-code", zipcode)
        rows.append((user, gender.strip(), _int(path, number, "Age", age),
                     _int(path, number, "Occupation", occupation), zipcode.strip()))
    if not rows:
        raise DataError(f"{path}: no users")
    rows.sort()
    user, gender, age, occupation, zipcode = zip(*rows)
    return {"user_id": np.asarray(user, np.int64), "gender": np.asarray(gender),
            "age": np.asarray(age, np.int64), "occupation": np.asarray(occupation, np.int64),
            "zip": np.asarray(zipcode)}


def read_movies(path: str) -> dict[str, np.ndarray]:
    """movies.dat -> columns movie_id, title, genres (object array of tuples), year (0 if none)."""
    rows, seen = [], {}
    for number, (mid, title, genres) in _lines(path, ("MovieID", "Title", "Genres")):
        movie = _int(path, number, "MovieID", mid)
        if movie in seen:
            raise DataError(f"{path}: line {number}: MovieID {movie} repeats line {seen[movie]}")
        seen[movie] = number
        names = tuple(g.strip() for g in genres.split("|") if g.strip()) or (NO_GENRE,)
        _check_csv_safe(path, number, "Genres", genres)
        year = _YEAR.search(title)
        rows.append((movie, title, names, int(year.group(1)) if year else 0))
    if not rows:
        raise DataError(f"{path}: no movies")
    rows.sort()
    genres = np.empty(len(rows), dtype=object)
    genres[:] = [r[2] for r in rows]
    return {"movie_id": np.asarray([r[0] for r in rows], np.int64),
            "title": np.asarray([r[1] for r in rows], dtype=object), "genres": genres,
            "year": np.asarray([r[3] for r in rows], np.int64)}


def read_ratings(path: str, user_ids: np.ndarray, movie_ids: np.ndarray) -> dict[str, np.ndarray]:
    """ratings.dat -> columns user, movie (row indices into the sorted id arrays), rating, timestamp."""
    users, movies, ratings, times = [], [], [], []
    known_users, known_movies = set(user_ids.tolist()), set(movie_ids.tolist())
    for number, (uid, mid, rating, ts) in _lines(
            path, ("UserID", "MovieID", "Rating", "Timestamp")):
        user, movie = _int(path, number, "UserID", uid), _int(path, number, "MovieID", mid)
        value, when = _int(path, number, "Rating", rating), _int(path, number, "Timestamp", ts)
        if user not in known_users:
            raise DataError(f"{path}: line {number}: UserID {user} is not in users.dat")
        if movie not in known_movies:
            raise DataError(f"{path}: line {number}: MovieID {movie} is not in movies.dat")
        if not 1 <= value <= 5:
            raise DataError(f"{path}: line {number}: Rating {value} is not in 1..5")
        users.append(user)
        movies.append(movie)
        ratings.append(value)
        times.append(when)
    if not users:
        raise DataError(f"{path}: no ratings")
    return {"user": np.searchsorted(user_ids, np.asarray(users, np.int64)),
            "movie": np.searchsorted(movie_ids, np.asarray(movies, np.int64)),
            "rating": np.asarray(ratings, np.int64), "timestamp": np.asarray(times, np.int64)}


# --------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------
_AGE_STARTS = 60 * (4 ** np.arange(AGE_BUCKETS, dtype=np.int64) - 1)


def age_bucket(seconds: np.ndarray) -> np.ndarray:
    """Bucket b holds [4^b - 1, 4^(b+1) - 1) minutes since the rating; the last one all older."""
    return np.maximum(np.searchsorted(_AGE_STARTS, seconds, side="right") - 1, 0)


ML_FEATURES: tuple[Column, ...] = (
    # Vocabularies of gender, age, occupation and genres come from the data (see _config).
    Column("user_id", "str", "categorical", "regular", "user", 16),
    Column("gender", "str", "categorical", "regular", "user", 4),
    Column("age", "int", "categorical", "regular", "user", 4),
    Column("occupation", "int", "categorical", "regular", "user", 4),
    Column("zip_prefix", "str", "categorical", "regular", "user", 8),
    Column("hist_movie_id", "str", "sequence", "regular", "user", 16),
    Column("hist_genre", "str", "sequence", "regular", "user", 8),
    Column("hist_rating", "str", "sequence", "regular", "user", 4, RATINGS),
    Column("hist_age_bucket", "str", "sequence", "regular", "user", 4, _vocab(AGE_BUCKETS)),
    Column("movie_id", "str", "categorical", "regular", "item", 16),
    Column("genres", "str", "sequence", "regular", "item", 8),
    Column("year", "int", "numeric", "regular", "item", 8),
    Column("u_genre_ratings", "int", "numeric", "privileged", "user", 8),
    Column("u_genre_ratings_30d", "int", "numeric", "privileged", "user", 8),
    Column("u_genre_mean_rating", "float", "numeric", "privileged", "user", 8, decimals=3),
    Column("u_genre_liked_frac", "float", "numeric", "privileged", "user", 8, decimals=3),
)
ML_COLUMNS: tuple[str, ...] = tuple(c.name for c in ML_FEATURES) + (TIMESTAMP, LABEL)


class _Table:
    """Every rating sorted by (user, timestamp, movie), with per-row features."""

    def __init__(self, users, movies, ratings):
        self.users, self.movies = users, movies
        order = np.lexsort((ratings["movie"], ratings["timestamp"], ratings["user"]))
        self.user = ratings["user"][order]
        self.movie = ratings["movie"][order]
        self.rating = ratings["rating"][order]
        self.timestamp = ratings["timestamp"][order]
        n = len(order)
        t = self.timestamp - self.timestamp.min()
        self.span = int(t.max()) + 1
        key = self.user * self.span + t  # non-decreasing
        self.before = np.searchsorted(key, key, side="left")  # end of the strictly-earlier ratings
        self.start = np.searchsorted(key, self.user * self.span, side="left")
        self.end = np.searchsorted(key, (self.user + 1) * self.span, side="left")
        self.length = np.minimum(HIST_MAX_LEN, self.before - self.start)
        # Most recent first: position p of the reversed user block holds rating start+end-1-p.
        self.reversed = self.start + self.end - 1 - np.arange(n)
        self.first = self.start + self.end - self.before  # reversed position of the latest earlier rating

        # Genres: names sorted; each rating expanded to one entry per genre of its movie.
        self.genre_names = sorted({g for gs in movies["genres"] for g in gs})
        gid = {g: i for i, g in enumerate(self.genre_names)}
        movie_genres = [[gid[g] for g in gs] for gs in movies["genres"]]
        n_genres_movie = np.asarray([len(gs) for gs in movie_genres], np.int64)
        flat = np.asarray([g for gs in movie_genres for g in gs], np.int64)
        offsets = np.concatenate([[0], np.cumsum(n_genres_movie)])
        per_rating = n_genres_movie[self.movie]
        entry_rating = np.repeat(np.arange(n), per_rating)
        within = np.arange(len(entry_rating)) - np.repeat(np.cumsum(per_rating) - per_rating, per_rating)
        entry_genre = flat[offsets[self.movie][entry_rating] + within]
        n_g = max(1, len(self.genre_names))
        group = self.user[entry_rating] * n_g + entry_genre
        stats = WindowStats(group, t[entry_rating], self.span, values={
            "rating": self.rating[entry_rating], "liked": self.rating[entry_rating] >= 4})
        # Querying with every entry gives, per rating, sums over its own movie's genres.
        et = t[entry_rating]
        count = np.bincount(entry_rating, stats.count(group, et), minlength=n)
        self.genre_ratings = count.astype(np.int64)
        self.genre_ratings_30d = np.bincount(
            entry_rating, stats.count(group, et, WINDOW_30D), minlength=n).astype(np.int64)
        total = np.bincount(entry_rating, stats.sum("rating", group, et), minlength=n)
        liked = np.bincount(entry_rating, stats.sum("liked", group, et), minlength=n)
        has = count > 0
        self.genre_mean = np.where(has, total / np.maximum(count, 1), -1.0).round(3)
        self.genre_liked = np.where(has, liked / np.maximum(count, 1), -1.0).round(3)

        primary = np.asarray([gs[0] if gs else "" for gs in movies["genres"]], dtype=object)
        rev = self.reversed
        self.hist = {
            "hist_movie_id": TokenWindows(movies["movie_id"][self.movie[rev]].astype(str).tolist()),
            "hist_genre": TokenWindows(primary[self.movie[rev]].tolist()),
            "hist_rating": TokenWindows(self.rating[rev].astype(str).tolist()),
        }
        self.rev_timestamp = self.timestamp[rev]

    def rows(self, idx: np.ndarray) -> dict[str, list[str]]:
        """The CSV fields of ratings ``idx`` (indices in the sorted table), by column."""
        users, movies = self.users, self.movies
        u, m = self.user[idx], self.movie[idx]
        first, length = self.first[idx], self.length[idx]
        window = np.minimum(first[:, None] + np.arange(HIST_MAX_LEN)[None, :], len(self.user) - 1)
        ages = age_bucket(self.timestamp[idx][:, None] - self.rev_timestamp[window])
        out = {
            "user_id": users["user_id"][u].astype(str).tolist(),
            "gender": users["gender"][u].tolist(),
            "age": users["age"][u].astype(str).tolist(),
            "occupation": users["occupation"][u].astype(str).tolist(),
            "zip_prefix": [z[:3] for z in users["zip"][u].tolist()],
        }
        for name, windows in self.hist.items():
            out[name] = windows(first, length).tolist()
        out["hist_age_bucket"] = joined_digits(ages, length).tolist()
        out.update({
            "movie_id": movies["movie_id"][m].astype(str).tolist(),
            "genres": ["|".join(g) for g in movies["genres"][m].tolist()],
            "year": movies["year"][m].astype(str).tolist(),
            "u_genre_ratings": self.genre_ratings[idx].astype(str).tolist(),
            "u_genre_ratings_30d": self.genre_ratings_30d[idx].astype(str).tolist(),
            "u_genre_mean_rating": [f"{v:.3f}" for v in self.genre_mean[idx].tolist()],
            "u_genre_liked_frac": [f"{v:.3f}" for v in self.genre_liked[idx].tolist()],
            TIMESTAMP: self.timestamp[idx].astype(str).tolist(),
            LABEL: (self.rating[idx] >= 4).astype(np.int64).astype(str).tolist(),
        })
        return out


def _write(path: str, table: _Table, idx: np.ndarray, names: list[str], chunk: int = 50_000) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(names) + "\n")
        for s in range(0, len(idx), chunk):
            cols = table.rows(idx[s:s + chunk])
            f.writelines(",".join(r) + "\n" for r in zip(*(cols[k] for k in names)))


def _config(table: _Table, train: np.ndarray, n_train: int) -> dict:
    users, movies = table.users, table.movies
    vocab = {
        "gender": sorted(set(users["gender"].tolist())),
        "age": [str(a) for a in sorted(set(users["age"].tolist()))],
        "occupation": [str(o) for o in sorted(set(users["occupation"].tolist()))],
        "hist_genre": table.genre_names,
        "genres": table.genre_names,
    }
    buckets = {
        "user_id": 2 * len(users["user_id"]),
        "zip_prefix": 2 * max(1, len({z[:3] for z in users["zip"].tolist()})),
        "hist_movie_id": 2 * len(movies["movie_id"]),
        "movie_id": 2 * len(movies["movie_id"]),
    }
    year = movies["year"][table.movie[train]]
    values = {
        "year": year[year > 0] if (year > 0).any() else np.zeros(1),
        "u_genre_ratings": table.genre_ratings[train],
        "u_genre_ratings_30d": table.genre_ratings_30d[train],
        "u_genre_mean_rating": table.genre_mean[train],
        "u_genre_liked_frac": table.genre_liked[train],
    }
    max_genres = max(1, max(len(g) for g in movies["genres"].tolist()))
    features = []
    for col in ML_FEATURES:
        if col.name in vocab:
            col = dataclasses.replace(col, vocabulary=tuple(vocab[col.name]))
        v = values.get(col.name, np.zeros(1))
        entry = feature_config(col, buckets.get(col.name), v)
        if col.name in ("u_genre_ratings", "u_genre_ratings_30d"):
            entry["boundaries"] = count_boundaries(v)
        elif col.name in ("u_genre_mean_rating", "u_genre_liked_frac"):
            defined = v[v >= 0]  # -1: no earlier rating in the genres, a bucket of its own
            entry["boundaries"] = [-0.5] + [b for b in (quantile_boundaries(defined) if len(defined) else [])
                                            if b > -0.5]
        if col.kind == "sequence":
            entry["max_len"] = max_genres if col.name == "genres" else HIST_MAX_LEN
        features.append(entry)
    # The CVR world's rate and length (synthetic.LEARNING_RATE, EPOCHS): MovieLens is not shipped, so
    # its own were never measured here; pfd-compare chooses them on the user's copy.
    config = run_config(features, n_train, seed=0)
    config["data"]["label"] = LABEL
    config["data"]["item_id_column"] = "movie_id"  # the retrieval index's ids
    # The CTR world's two-tower model, over MovieLens' own behaviour sequence: the
    # earlier ratings (movie, genre), each described by its rating and its age; DNN
    # teachers attend over them with the candidate movie.
    config["model"] = {**MODEL, "behaviour_items": ["hist_movie_id", "hist_genre"],
                       "behaviour_side": ["hist_rating", "hist_age_bucket"],
                       "teacher_target_features": ["movie_id"]}
    return config


def prepare_movielens(src_dir: str, out_dir: str, test_fraction: float = 0.1) -> str:
    """Reads MovieLens-1M from ``src_dir``, writes the dataset under ``out_dir``; returns config.yaml's path."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    users = read_users(os.path.join(src_dir, "users.dat"))
    movies = read_movies(os.path.join(src_dir, "movies.dat"))
    ratings = read_ratings(os.path.join(src_dir, "ratings.dat"), users["user_id"], movies["movie_id"])
    table = _Table(users, movies, ratings)

    labelled = np.flatnonzero(table.rating != 3)
    if len(labelled) < 2:
        raise DataError(f"{src_dir}: fewer than 2 ratings other than 3, nothing to split")
    ts = table.timestamp[labelled]
    order = np.lexsort((users["user_id"][table.user[labelled]], movies["movie_id"][table.movie[labelled]], ts))
    labelled, ts = labelled[order], ts[order]  # time order (ties by movie, then user)
    n_test = max(1, round(test_fraction * len(labelled)))
    cut = ts[len(labelled) - n_test]
    test = ts >= cut  # a second is never split between train and test
    if test.all():
        raise DataError(f"{src_dir}: every labelled rating has the last timestamp {cut}; cannot split by time")
    train_idx, test_idx = labelled[~test], labelled[test]

    names = list(ML_COLUMNS)
    parts = min(8, max(1, math.ceil(len(train_idx) / TRAIN_PART_ROWS)))
    for p, idx in enumerate(np.array_split(train_idx, parts)):
        _write(os.path.join(out_dir, "train", f"part-{p:02d}.csv"), table, idx, names)
    _write(os.path.join(out_dir, "test", "part-00.csv"), table, test_idx, names)

    train_mask = np.zeros(len(table.user), bool)
    train_mask[train_idx] = True
    config = _config(table, train_mask, len(train_idx))
    path = os.path.join(out_dir, "config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(config, f, Dumper=_ConfigDumper, sort_keys=False,
                  default_flow_style=None, width=1 << 16)
    return path


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def _main(argv):
    from absl import app, flags

    from pfd_tf.data.output_dir import OutputDirError, write_dataset_into

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    try:
        print(write_dataset_into(f.out, lambda out: prepare_movielens(f.src, out, f.test_fraction), f.overwrite))
    except OutputDirError as err:
        print(f"pfd_tf.data.movielens: error: {err}", file=sys.stderr)
        return 2
    except (DataError, ValueError) as err:
        raise app.UsageError(str(err)) from err
    return 0


def run():
    """``python -m pfd_tf.data.movielens --src DIR --out DIR [--test_fraction F] [--overwrite]``."""
    from absl import app, flags

    # Defined here, not at import, so importing this module never clashes with other flags.
    flags.DEFINE_string("src", None, "Directory with MovieLens-1M ratings.dat, users.dat, movies.dat.")
    flags.DEFINE_string("out", None, "Output directory: new or empty (created if missing), or see --overwrite.")
    flags.DEFINE_float("test_fraction", 0.1, "Share of the latest labelled ratings held out as test.")
    flags.DEFINE_boolean("overwrite", False, "Replace the dataset written in --out before "
                         "(without it, a non-empty --out is refused; see pfd_tf.data.output_dir).")
    flags.mark_flags_as_required(["src", "out"])
    app.run(_main)


if __name__ == "__main__":
    run()
