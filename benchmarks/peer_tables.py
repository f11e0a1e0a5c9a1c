"""What benchmarks/peer_baseline.py prints and how it resumes: its tables, and the results already measured."""
from __future__ import annotations

import json
import os
import statistics

from common import fmt
from peer_zoo import NAMES


class Done:
    """Results already measured, one JSON line each in `path`: a run interrupted and started again skips them."""

    def __init__(self, path: str):
        self.path = path
        self.values = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        entry = json.loads(line)
                        self.values[entry["key"]] = entry["value"]

    def get(self, key: str, measure):
        if key not in self.values:
            self.values[key] = measure()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "value": self.values[key]}) + "\n")
        return self.values[key]


DIVERGED_NOTE = ("\n† diverged (the divergence guard stopped it, exit 4, nothing exported): scored as the constant "
                 "predictor, AUC 0.5, log loss not defined")


def _cell(value, diverged: bool) -> str:
    text = "-" if value is None else f"{value:.4f}"
    return text + "†" if diverged else text


def print_tables(scenario: str, seeds, rows, args) -> None:
    """AUC and log loss by model and seed, then pfd_tf - DeepCTR per seed."""
    models = list(dict.fromkeys(r["model"] for r in rows))  # pfd_tf rows first, as trained

    def values(model, key):
        by_seed = {r["seed"]: r.get(key, False if key == "diverged" else None) for r in rows if r["model"] == model}
        return [by_seed[s] for s in seeds]

    for key, title in (("auc", "held-out AUC"), ("logloss", "held-out log loss")):
        print(f"\n{scenario} ({args.rows or 'default'} rows, seeds {args.seeds}): {title}\n")
        print("| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd |")
        print("|---" * (len(seeds) + 2) + "|")
        for model in models:
            cells = values(model, key)
            marks = values(model, "diverged")
            print(f"| {model} | " + " | ".join(_cell(v, m) for v, m in zip(cells, marks)) + f" | {fmt(cells)} |")
    if any(r.get("diverged") for r in rows):
        print(DIVERGED_NOTE)
    peer = next(r["model"] for r in rows if r["side"] == "deepctr")
    print()
    for model in (m for m in models if m != peer):
        gaps = [a - b for a, b in zip(values(model, "auc"), values(peer, "auc"))]
        label = "pfd_tf - DeepCTR" + (f" ({model.split('(')[-1].rstrip(')')})" if len(models) > 2 else "")
        print(f"{label}, AUC per seed: {', '.join(f'{g:+.4f}' for g in gaps)}  (mean {statistics.mean(gaps):+.4f})")


def print_parity(seeds, results, models, args) -> None:
    """One table over the models: pfd_tf's AUC, DeepCTR's and the difference per world and mean (the first pfd_tf
    row of each model: for dnn on a two-tower world, the baseline student as configured)."""
    print(f"\nParity ({args.rows or 'default'} rows; held-out AUC; difference = pfd_tf - DeepCTR)\n")
    print("| model | " + " | ".join(f"world {s}" for s in seeds) + " | mean |")
    print("|---" * (len(seeds) + 2) + "|")
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        for model in models:
            rows = [r for r in results if r["scenario"] == scenario and r["zoo"] == model]
            sides = {}
            for side in ("pfd_tf", "deepctr"):
                first = next(r["model"] for r in rows if r["side"] == side)
                by_seed = {r["seed"]: (r["auc"], r.get("diverged", False)) for r in rows if r["model"] == first}
                sides[side] = (first, [by_seed[s] for s in seeds])
            gaps = [a[0] - b[0] for a, b in zip(sides["pfd_tf"][1], sides["deepctr"][1])]
            for name, cells in sides.values():
                mean = statistics.mean(v for v, _ in cells)
                print(f"| {name} | " + " | ".join(_cell(v, m) for v, m in cells) + f" | {mean:.4f} |")
            print(f"| {NAMES[model]}: difference | " + " | ".join(f"{g:+.4f}" for g in gaps)
                  + f" | **{statistics.mean(gaps):+.4f}** |")
    if any(r.get("diverged") for r in results):
        print(DIVERGED_NOTE)
