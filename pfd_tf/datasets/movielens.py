"""MovieLens-1M as a PFD dataset: time-split CSVs + config.yaml.

    python -m pfd_tf.datasets.movielens --src ml-1m/ --out data/ml1m [--test_fraction 0.1] [--overwrite]

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
import sys

import numpy as np
import yaml

from pfd_tf.data.files import DataError
from pfd_tf.datasets.ctr_config import MODEL
from pfd_tf.datasets.movielens_files import read_movies, read_ratings, read_users
from pfd_tf.datasets.movielens_table import HIST_MAX_LEN, LABEL, ML_COLUMNS, ML_FEATURES, RatingsTable
from pfd_tf.datasets.train_config import run_config
from pfd_tf.datasets.writer import ConfigDumper, count_boundaries, feature_config, quantile_boundaries

TRAIN_PART_ROWS = 100_000  # rows per train file (at most 8 files)


def _write(path: str, table: RatingsTable, idx: np.ndarray, names: list[str], chunk: int = 50_000) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(names) + "\n")
        for s in range(0, len(idx), chunk):
            cols = table.rows(idx[s:s + chunk])
            f.writelines(",".join(r) + "\n" for r in zip(*(cols[k] for k in names)))


def _config(table: RatingsTable, train: np.ndarray, n_train: int) -> dict:
    users, movies = table.users, table.movies
    vocabularies = {
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
        if col.name in vocabularies:
            col = dataclasses.replace(col, vocabulary=tuple(vocabularies[col.name]))
        v = values.get(col.name, np.zeros(1))
        max_len = (max_genres if col.name == "genres" else HIST_MAX_LEN) if col.kind == "sequence" else None
        entry = feature_config(col, buckets.get(col.name), v, max_len)
        if col.name in ("u_genre_ratings", "u_genre_ratings_30d"):
            entry["boundaries"] = count_boundaries(v)
        elif col.name in ("u_genre_mean_rating", "u_genre_liked_frac"):
            defined = v[v >= 0]  # -1: no earlier rating in the genres, a bucket of its own
            entry["boundaries"] = [-0.5] + [b for b in (quantile_boundaries(defined) if len(defined) else [])
                                            if b > -0.5]
        features.append(entry)
    # The CVR world's rate and length (train_config.LEARNING_RATE, EPOCHS): MovieLens is not shipped, so
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
    table = RatingsTable(users, movies, ratings)

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
        yaml.dump(config, f, Dumper=ConfigDumper, sort_keys=False,
                  default_flow_style=None, width=1 << 16)
    return path


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def _main(argv):
    from absl import app, flags

    from pfd_tf.datasets.output_dir import OutputDirError, write_dataset_into

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    try:
        print(write_dataset_into(f.out, lambda out: prepare_movielens(f.src, out, f.test_fraction), f.overwrite))
    except OutputDirError as err:
        print(f"pfd_tf.datasets.movielens: error: {err}", file=sys.stderr)
        return 2
    except (DataError, ValueError) as err:
        raise app.UsageError(str(err)) from err
    return 0


def run():
    """``python -m pfd_tf.datasets.movielens --src DIR --out DIR [--test_fraction F] [--overwrite]``."""
    from absl import app, flags

    # Defined here, not at import, so importing this module never clashes with other flags.
    flags.DEFINE_string("src", None, "Directory with MovieLens-1M ratings.dat, users.dat, movies.dat.")
    flags.DEFINE_string("out", None, "Output directory: new or empty (created if missing), or see --overwrite.")
    flags.DEFINE_float("test_fraction", 0.1, "Share of the latest labelled ratings held out as test.")
    flags.DEFINE_boolean("overwrite", False, "Replace the dataset written in --out before "
                         "(without it, a non-empty --out is refused; see pfd_tf.datasets.output_dir).")
    flags.mark_flags_as_required(["src", "out"])
    app.run(_main)


if __name__ == "__main__":
    run()
