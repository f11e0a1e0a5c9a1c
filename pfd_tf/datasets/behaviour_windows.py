"""Per-user behaviour windows as the CTR world and MovieLens build them: counts and sums of a user's
events in a time window strictly before each row, and `|`-joined sequences of the last behaviours.

Strictly before: a row's own behaviour never counts in its features (no label leak).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


class TokenWindows:
    """``"|".join(tokens[s:s + n])`` for many windows (s, n) of one token list.

    The tokens are joined once into one long string; each window is then one
    slice of it, so a million 50-token windows take well under a second.
    """

    def __init__(self, tokens: list[str]):
        self.text = "|".join(tokens) + "|"
        ends = np.cumsum(np.fromiter(map(len, tokens), np.int64, len(tokens)) + 1)
        self.offsets = np.concatenate([[0], ends])

    def __call__(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """An object array of the joined windows ("" where a length is 0)."""
        lo = self.offsets[starts]
        hi = np.maximum(lo, self.offsets[starts + lengths] - 1)  # drop the last "|"
        out = np.empty(len(lo), dtype=object)
        out[:] = [self.text[a:b] for a, b in zip(lo.tolist(), hi.tolist())]
        return out


def joined_digits(digits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows of single-digit ids ``[n, k]`` -> ``"d0|d1|..."`` of the first ``lengths`` ones."""
    n, k = digits.shape
    chars = np.zeros((n, 2 * k), np.uint8)
    chars[:, 0::2] = ord("0") + digits
    chars[:, 1::2] = ord("|")
    chars[np.arange(2 * k)[None, :] >= 2 * lengths[:, None] - 1] = 0  # numpy drops trailing NULs
    out = np.empty(n, dtype=object)
    out[:] = [b.decode("ascii") for b in chars.view(f"S{2 * k}").ravel().tolist()]
    return out


class WindowStats:
    """Counts (and sums ``values`` of) events per group, e.g. user x category,
    in time windows that end strictly before query times.

    ``time`` must be >= 0 and < ``span``; groups are non-negative integers.
    """

    def __init__(self, group: np.ndarray, time: np.ndarray, span: int,
                 values: Mapping[str, np.ndarray] | None = None):
        self.span = int(span)
        key = np.asarray(group, np.int64) * self.span + time
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.cums = {name: np.concatenate([[0], np.cumsum(np.asarray(v)[order])])
                     for name, v in (values or {}).items()}

    def bounds(self, group: np.ndarray, time: np.ndarray, window: int | None = None):
        """Index range [lo, hi) of the group's events at times in [time - window, time)
        (all times before ``time`` when window is None)."""
        base = np.asarray(group, np.int64) * self.span
        hi = np.searchsorted(self.keys, base + time, side="left")
        start = 0 if window is None else np.maximum(time - window, 0)
        return np.searchsorted(self.keys, base + start, side="left"), hi

    def count(self, group: np.ndarray, time: np.ndarray, window: int | None = None) -> np.ndarray:
        lo, hi = self.bounds(group, time, window)
        return hi - lo

    def sum(self, name: str, group: np.ndarray, time: np.ndarray,
            window: int | None = None) -> np.ndarray:
        lo, hi = self.bounds(group, time, window)
        return self.cums[name][hi] - self.cums[name][lo]

    def last_time(self, group: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Time of the group's last event strictly before ``time``, or -1."""
        hi = np.searchsorted(self.keys, np.asarray(group, np.int64) * self.span + time, side="left")
        prev = self.keys[np.maximum(hi - 1, 0)]
        found = (hi > 0) & (prev // self.span == group)
        return np.where(found, prev % self.span, -1)
