"""MovieLens-1M's ratings as one table sorted by (user, time, movie), with each row's features: the
user's last ratings as sequences and the privileged user x movie genre counts (strictly earlier ratings
only, so no row sees its own label).  The columns are listed in :mod:`pfd_tf.datasets.movielens`.
"""
from __future__ import annotations

import numpy as np

from pfd_tf.datasets.behaviour_windows import TokenWindows, WindowStats, joined_digits
from pfd_tf.datasets.sampling import vocab
from pfd_tf.datasets.writer import Column

LABEL = "liked"
TIMESTAMP = "timestamp"
HIST_MAX_LEN = 50
AGE_BUCKETS = 10
WINDOW_30D = 30 * 86_400
RATINGS = tuple(str(r) for r in range(1, 6))


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
    Column("hist_age_bucket", "str", "sequence", "regular", "user", 4, vocab(AGE_BUCKETS)),
    Column("movie_id", "str", "categorical", "regular", "item", 16),
    Column("genres", "str", "sequence", "regular", "item", 8),
    Column("year", "int", "numeric", "regular", "item", 8),
    Column("u_genre_ratings", "int", "numeric", "privileged", "user", 8),
    Column("u_genre_ratings_30d", "int", "numeric", "privileged", "user", 8),
    Column("u_genre_mean_rating", "float", "numeric", "privileged", "user", 8, decimals=3),
    Column("u_genre_liked_frac", "float", "numeric", "privileged", "user", 8, decimals=3),
)
ML_COLUMNS: tuple[str, ...] = tuple(c.name for c in ML_FEATURES) + (TIMESTAMP, LABEL)


class RatingsTable:
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
