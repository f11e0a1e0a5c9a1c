"""A whole comparison: choose each method's grid point, train every method on every seed, write the report."""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from pfd_tf import config as config_lib
from pfd_tf.compare import methods as methods_lib
from pfd_tf.compare import diagnostic, plot, report, runs
from pfd_tf.compare.grid import EMBEDDING_L2, LEARNING_RATE, NORMALIZATION, Axis, Grid, parse_axis, split_values
from pfd_tf.compare.split import check_held_out_apart, validation_split
from pfd_tf.config import ConfigError

# The default rate grid: the config's rate times these (Adagrad's best rate moves with the loss:
# soft labels are far less noisy than clicks, so one rate for all methods favours one of them).
RATE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
REPORT_FILES = {"markdown": "compare.md", "json": "compare.json", "png": "compare.png"}


def run_comparison(config_path: str, out_dir: str, *, modes: str = "", lambdas: str = "", seeds: str = "0,1,2",
                   rates: str = "", overrides: Sequence[str] = (), title: str = "",
                   config_for_seed: Callable[[int], str] | None = None, tune_seed: int | None = None,
                   log: Callable[[str], None] = print, normalizations: str = "", embedding_l2: str = "",
                   grid: Sequence[str] = ()) -> dict:
    """Runs the comparison `pfd-compare` describes; returns the JSON record it writes to `out_dir`.

    `config_path` is the config grid points are chosen on (its validation
    split); `config_for_seed(seed)` the config each evaluation seed trains
    (default: `config_path` for every seed), whose held-out files the choice
    may not read (`split.HeldOutOverlapError`).  `tune_seed` is the training
    seed of the choosing runs (default: the config's `train.seed`).
    The grid: `rates` (default: the config's rate x `RATE_FACTORS`) x
    `normalizations` x `embedding_l2` x each `grid` axis ("key=v1,v2");
    empty `normalizations` / `embedding_l2` leave the config's own value
    (pfd-compare's command line tunes the three normalizations by default).
    """
    base = config_lib.load(config_path, list(overrides))
    mode_list = methods_lib.parse_modes(modes, base)
    sweep = methods_lib.parse_floats(lambdas, "--lambdas")
    method_list = methods_lib.methods_for(mode_list, sweep, base)
    seed_values = methods_lib.parse_floats(seeds, "--seeds")
    if not seed_values or any(s != int(s) or s < 0 for s in seed_values):
        raise ConfigError(f"--seeds: expected non-negative integers, got {seeds!r}")
    seed_list = [int(s) for s in seed_values]
    the_grid = build_grid(base.train.learning_rate, rates, normalizations, embedding_l2, grid, overrides)
    tune_seed = base.train.seed if tune_seed is None else tune_seed
    for method in method_list:  # every point's config loads (a bad value names its key) before any run
        for point in the_grid.points():
            runs.load_config(config_path, overrides, method, point, tune_seed)
    tuning_config = validation_split(base)  # a config without a usable validation split fails here
    config_for_seed = config_for_seed or (lambda seed: config_path)
    evaluation_paths = {seed: config_for_seed(seed) for seed in seed_list}
    for path in dict.fromkeys(evaluation_paths.values()):
        check_held_out_apart(config_path, tuning_config, path, config_lib.load(path, list(overrides)))
    os.makedirs(out_dir, exist_ok=True)
    title = title or f"pfd-compare: {config_path}"
    started = time.perf_counter()
    points = the_grid.points()
    log(f"{len(method_list)} methods x {len(points)} grid points on the validation split, then x "
        f"{len(seed_list)} seeds: {len(method_list) * (len(points) + len(seed_list))} runs under {out_dir}/runs")

    chosen, tuning, notes = runs.choose_points(config_path, overrides, method_list, the_grid, tune_seed, out_dir, log)
    results = runs.evaluate(evaluation_paths.__getitem__, overrides, method_list, chosen, seed_list, out_dir, log)
    rows = report.summarize(method_list, chosen, tuning, results, seed_list, methods_lib.config_lambda(base))
    diagnostics = diagnostic.of_runs(results)
    text = (report.markdown(title, rows, tuning, the_grid, seed_list, notes)
            + report.diagnostic_markdown(diagnostics, rows))
    record = {"title": title, "config": os.path.abspath(config_path), "overrides": list(overrides),
              "validation_config": os.path.abspath(config_path),
              "evaluation_configs": {str(s): os.path.abspath(p) for s, p in evaluation_paths.items()},
              "seeds": seed_list, "rates": the_grid.to_dict()[LEARNING_RATE], "grid": the_grid.to_dict(),
              "grid_points": [p.as_dict() for p in points], "tune_seed": tune_seed,
              "chosen": {name: p.as_dict() if p else None for name, p in chosen.items()},
              "chosen_rates": {name: p.value(LEARNING_RATE) if p else None for name, p in chosen.items()},
              "notes": notes, "summary": rows, "diagnostic": diagnostics,
              "validation_runs": [r.to_dict() for r in tuning],
              "runs": [r.to_dict() for r in results], "wall_seconds": round(time.perf_counter() - started, 1)}
    paths = {kind: os.path.join(out_dir, name) for kind, name in REPORT_FILES.items()}
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(text)
    report.write_json(paths["json"], record)
    missing = plot.plot_missing()
    if missing:
        log(f"no PNG: {missing}")
        del paths["png"]
    else:
        plot.write_png(paths["png"], title, rows)
    log("\n" + text)
    for kind, path in paths.items():
        log(f"{kind}: {path}")
    return record


def build_grid(config_rate: float, rates: str, normalizations: str, embedding_l2: str, grid: Sequence[str],
               overrides: Sequence[str] = ()) -> Grid:
    """The comparison's grid from its flags: the rate axis first, then normalization, L2, each `--grid` axis."""
    rate_list = methods_lib.parse_floats(rates, "--rates") or [config_rate * f for f in RATE_FACTORS]
    if any(r <= 0 for r in rate_list):
        raise ConfigError("--rates: learning rates must be positive")
    axes = [Axis.of(LEARNING_RATE, rate_list, "--rates")]
    if normalizations.strip():
        axes.append(Axis.of(NORMALIZATION, split_values(normalizations), "--normalizations"))
    if embedding_l2.strip():
        values = methods_lib.parse_floats(embedding_l2, "--embedding_l2")
        if any(v < 0 for v in values):
            raise ConfigError("--embedding_l2: L2 weights must be >= 0")
        axes.append(Axis.of(EMBEDDING_L2, values, "--embedding_l2"))
    axes += [parse_axis(spec) for spec in grid]
    return Grid.of(axes, overrides)
