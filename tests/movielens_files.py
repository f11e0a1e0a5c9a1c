"""Tiny hand-written MovieLens-1M files (users.dat, movies.dat, ratings.dat; the real data is never shipped),
for the loader's tests (`tests/datasets/test_movielens.py`) and the writer's refusal (`tests/cli/test_bad_inputs.py`)."""
import os

import numpy as np

T0 = 978_300_000
DAY = 86_400
USERS = ["1::F::1::10::48067", "2::M::56::16::70072", "3::M::25::15::55117-1234",
         "4::F::35::0::02139"]
MOVIES = {
    1: ("Toy Story (1995)", "Animation|Children's|Comedy"),
    2: ("Jumanji (1995)", "Adventure|Children's|Fantasy"),
    3: ("Heat (1995)", "Action|Crime|Thriller"),
    4: ("Am\u00e9lie (Fabuleux destin d'Am\u00e9lie Poulain, Le) (2001)", "Comedy|Romance"),
    5: ("Sabrina (1995)", "Comedy|Romance"),
    6: ("A Movie Without Year", "Drama"),
}
RATINGS = [  # (user, movie, rating, timestamp)
    (1, 1, 5, T0),
    (1, 4, 4, T0 + 10),
    (1, 5, 3, T0 + 10),  # same second as the previous one; 3: no row, but history
    (1, 2, 2, T0 + 100),
    (1, 3, 1, T0 + 40 * DAY),
    (1, 6, 4, T0 + 40 * DAY + 60),
    (2, 4, 5, T0 + 5),
    (2, 1, 3, T0 + 6),
    (2, 5, 1, T0 + 10 * DAY),
    (2, 2, 4, T0 + 35 * DAY),
    (3, 3, 4, T0 + 50 * DAY),
    (3, 1, 2, T0 + 50 * DAY),
    (3, 5, 5, T0 + 51 * DAY),
] + [(4, 1 + k % 6, 4 if k % 3 else 2, T0 + 20 * DAY + 600 * k) for k in range(60)]


def write_movielens(directory, users=USERS, movies=MOVIES, ratings=RATINGS, shuffle=True):
    """Writes users.dat, movies.dat (latin-1) and ratings.dat in the MovieLens-1M format."""
    os.makedirs(directory, exist_ok=True)
    lines = [f"{u}::{m}::{r}::{t}" for u, m, r, t in ratings]
    if shuffle:  # the loader must not rely on the file order
        lines = [lines[i] for i in np.random.default_rng(0).permutation(len(lines))]
    with open(os.path.join(directory, "ratings.dat"), "w", encoding="latin-1") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(directory, "users.dat"), "w", encoding="latin-1") as f:
        f.write("\n".join(users) + "\n")
    with open(os.path.join(directory, "movies.dat"), "w", encoding="latin-1") as f:
        f.write("\n".join(f"{m}::{t}::{g}" for m, (t, g) in movies.items()) + "\n")
    return str(directory)
