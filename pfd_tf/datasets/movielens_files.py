"""Reading MovieLens-1M's three ``.dat`` files (``::``-separated, latin-1): users, movies, ratings.

A malformed line (wrong number of ``::`` fields, a non-integer id, rating or timestamp, an unknown or
repeated id, a character that would break the CSV written from it) raises :class:`DataError` naming the
file and line, before anything is written.
"""
from __future__ import annotations

import os
import re

import numpy as np

from pfd_tf.data.files import DataError

NO_GENRE = "(no genres listed)"  # a movie without genres (keeps the sequences aligned)
_YEAR = re.compile(r"\((\d{4})\)\s*$")


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
