"""Small random files in the formats Criteo and Avazu are distributed in, written by the tests themselves.

Criteo: tab-separated, no header, `label, I1..I13, C1..C26`, many empty
fields (I2 may be negative).  Avazu: comma-separated with a header
(`id, click, hour, C1, banner_pos, site_id, ..., C14..C21`), `hour` as
YYMMDDHH.  Categories are drawn from a skewed pool, so that some are seen
fewer than a min_count's times and some often.
"""
from __future__ import annotations

import os

import numpy as np

CRITEO_COLUMNS = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
AVAZU_COLUMNS = ["id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id",
                 "app_domain", "app_category", "device_id", "device_ip", "device_model", "device_type",
                 "device_conn_type"] + [f"C{i}" for i in range(14, 22)]


def _skewed(rng, pool: int, rows: int) -> np.ndarray:
    """Indices into a pool of `pool` categories, Zipf-like: a few frequent, a long tail of rare ones."""
    weights = 1.0 / np.arange(1, pool + 1) ** 1.1
    return rng.choice(pool, rows, p=weights / weights.sum())


def criteo_rows(rows: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    ints = np.floor(np.exp(rng.normal(1.5, 1.8, (rows, 13)))).astype(int)
    ints[:, 1] -= 2  # I2 holds -1 and -2 as well
    cats = np.stack([_skewed(rng, 60, rows) for _ in range(26)], axis=1)
    logit = 0.8 * (cats[:, 0] % 3 == 0) - 0.3 * np.log1p(np.maximum(ints[:, 0], 0)) + rng.normal(0, 1, rows)
    label = (logit > 0).astype(int)
    out = []
    for r in range(rows):
        row = [str(label[r])]
        row += ["" if rng.random() < 0.2 else str(v) for v in ints[r]]
        row += ["" if rng.random() < 0.15 else f"{(c * 2654435761) % (1 << 32):08x}" for c in cats[r]]
        out.append(row)
    return out


def _write_split(directory: str, lines: list[str], names: tuple[str, str, str], header: str = "") -> dict:
    """Two fifths of `lines` to each of the first two files, the rest to the third; returns {path: lines}."""
    rows = len(lines)
    split = dict(zip(names, (lines[: rows * 2 // 5], lines[rows * 2 // 5: rows * 4 // 5], lines[rows * 4 // 5:])))
    for path, body in split.items():
        os.makedirs(os.path.join(directory, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(directory, path), "w") as f:
            f.write((header + "\n" if header else "") + "\n".join(body) + "\n")
    return split


def write_criteo(directory: str, rows: int = 480, seed: int = 0) -> dict[str, list[str]]:
    """`train/day-0.txt`, `train/day-1.txt`, `eval/day-2.txt` (TSV, no header); returns {path: lines}."""
    lines = ["\t".join(row) for row in criteo_rows(rows, seed)]
    return _write_split(directory, lines, ("train/day-0.txt", "train/day-1.txt", "eval/day-2.txt"))


def avazu_rows(rows: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    days = rng.integers(21, 24, rows)  # 2014-10-21 (a Tuesday) .. 10-23
    hours = rng.integers(0, 24, rows)
    out = []
    for r in range(rows):
        values = {"id": str(10_000_000_000 + r), "hour": f"1410{days[r]:02d}{hours[r]:02d}",
                  "C1": str(1005 + rng.integers(0, 3)), "banner_pos": str(rng.integers(0, 2))}
        for column in AVAZU_COLUMNS[5:]:
            if column not in values:
                values[column] = f"{(_skewed(rng, 40, 1)[0] * 40503 + len(column)) % (1 << 28):07x}"
        values["device_type"] = str(rng.integers(0, 3))
        logit = 0.9 * (values["site_id"] < "4") + 0.5 * (hours[r] > 12) - 1 + rng.normal(0, 1)
        values["click"] = str(int(logit > 0))
        out.append([values[c] for c in AVAZU_COLUMNS])
    return out


def write_avazu(directory: str, rows: int = 480, seed: int = 0) -> dict[str, list[str]]:
    """`train/part-0.csv`, `train/part-1.csv`, `eval/part-2.csv`, each with the header; returns {path: rows}."""
    lines = [",".join(row) for row in avazu_rows(rows, seed)]
    return _write_split(directory, lines, ("train/part-0.csv", "train/part-1.csv", "eval/part-2.csv"),
                        header=",".join(AVAZU_COLUMNS))
