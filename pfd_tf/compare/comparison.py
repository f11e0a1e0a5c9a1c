"""A whole comparison: choose each method's rate, train every method on every seed, write the report."""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from pfd_tf import config as config_lib
from pfd_tf.compare import methods as methods_lib
from pfd_tf.compare import diagnostic, plot, report, runs
from pfd_tf.compare.split import validation_split
from pfd_tf.config import ConfigError

# The default rate grid: the config's rate times these (Adagrad's best rate moves with the loss:
# soft labels are far less noisy than clicks, so one rate for all methods favours one of them).
RATE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
REPORT_FILES = {"markdown": "compare.md", "json": "compare.json", "png": "compare.png"}


def run_comparison(config_path: str, out_dir: str, *, modes: str = "", lambdas: str = "", seeds: str = "0,1,2",
                   rates: str = "", overrides: Sequence[str] = (), title: str = "",
                   config_for_seed: Callable[[int], str] | None = None, tune_seed: int | None = None,
                   log: Callable[[str], None] = print) -> dict:
    """Runs the comparison `pfd-compare` describes; returns the JSON record it writes to `out_dir`.

    `config_path` is the config rates are chosen on (its validation split);
    `config_for_seed(seed)` the config each evaluation seed trains (default:
    `config_path` for every seed).  `tune_seed` is the training seed of the
    rate-choosing runs (default: the config's `train.seed`).
    """
    base = config_lib.load(config_path, list(overrides))
    mode_list = methods_lib.parse_modes(modes, base)
    sweep = methods_lib.parse_floats(lambdas, "--lambdas")
    method_list = methods_lib.methods_for(mode_list, sweep, base)
    seed_values = methods_lib.parse_floats(seeds, "--seeds")
    if not seed_values or any(s != int(s) or s < 0 for s in seed_values):
        raise ConfigError(f"--seeds: expected non-negative integers, got {seeds!r}")
    seed_list = [int(s) for s in seed_values]
    rate_list = methods_lib.parse_floats(rates, "--rates") or [base.train.learning_rate * f for f in RATE_FACTORS]
    if any(r <= 0 for r in rate_list):
        raise ConfigError("--rates: learning rates must be positive")
    validation_split(base)  # a config without a usable validation split fails here, before any run
    tune_seed = base.train.seed if tune_seed is None else tune_seed
    config_for_seed = config_for_seed or (lambda seed: config_path)
    os.makedirs(out_dir, exist_ok=True)
    title = title or f"pfd-compare: {config_path}"
    started = time.perf_counter()
    log(f"{len(method_list)} methods x {len(rate_list)} rates on the validation split, then x "
        f"{len(seed_list)} seeds: {len(method_list) * (len(rate_list) + len(seed_list))} runs under {out_dir}/runs")

    rate_of, tuning = runs.choose_rates(config_path, overrides, method_list, rate_list, tune_seed, out_dir, log)
    results = runs.evaluate(config_for_seed, overrides, method_list, rate_of, seed_list, out_dir, log)
    rows = report.summarize(method_list, rate_of, tuning, results, seed_list, base.distill.lambda_)
    diagnostics = diagnostic.of_runs(results)
    text = report.markdown(title, rows, tuning, rate_list, seed_list) + report.diagnostic_markdown(diagnostics, rows)
    record = {"title": title, "config": os.path.abspath(config_path), "overrides": list(overrides),
              "seeds": seed_list, "rates": rate_list, "tune_seed": tune_seed, "chosen_rates": rate_of,
              "summary": rows, "diagnostic": diagnostics, "validation_runs": [r.to_dict() for r in tuning],
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
