"""When does distillation help?  PFD's and LUPI's gain over the baseline along the dial world's dial (issue 20).

    python benchmarks/regimes.py --out bench_out/regimes [--rows 60000] [--epochs 2] [--rates 0.001,0.002,0.004]
        [--seeds 0,1,2] [--tune-seed 100] [--docs docs] [--channels 40:0.9,...]

For each id-space size (``ROWS_PER_ID_SETTINGS``: rows per user and per item)
and each dial setting (``DIAL_SETTINGS``: the share rho of the label noise the
privileged feature explains), both fixed in `pfd_tf.datasets.dial`
before any comparison was run, this is one pfd-compare run
(`run_comparison`, as `benchmarks/compare_methods.py`): baseline, PFD and
LUPI, each method's rate chosen from ``--rates`` on the validation split of
the validation world (``--tune-seed``), then trained on worlds 0, 1, 2 at
that rate (train.seed = the world's seed) and evaluated on their held-out
day.  One seed gives the same regular columns and labels at every rho, so
only what the teacher knows moves along a line.  Beside each setting: the
world's own oracle quantities (`oracle_quantities`, the test days of worlds
0-2) and pfd-compare's diagnostic (`pfd_tf.compare.diagnostic`), and
Spearman's rank correlation of the diagnostic with the measured PFD gains.

``--channels 40:0.9`` also splits PFD's gain at that setting into what its
soft labels carry and what its teacher's training of the shared embedding
tables carries, and trains the baseline at PFD's rate (`channels`: 22 more
runs a setting).

Where the validation world chose PFD's or LUPI's rate apart from the
baseline's and ``--channels`` trained the baseline at that rate, a last table
sets each such setting against it (`same_rate`).

Writes OUT/rpi<r>/rho<rho>/ (one comparison each: compare.md, compare.json,
runs/), OUT/regimes.json, and DOCS/regimes.md and DOCS/regimes.png
(`regimes_report`).  Every run is resumable: started again, finished runs are
read back, and the docs are rewritten from them.

Budget (the defaults).  10 settings (5 dial x 2 sizes) x 3 methods x (3 rates
+ 3 worlds) = 180 runs of 2 epochs over 52,500 training rows (102 steps of
1024), plus 40 worlds of 60,000 rows (~3 s each).  One run costs ~20 s on
an idle 2-core machine (~8 s training, the rest building, evaluating and
exporting) and was measured at ~35-50 s on this shared one (load 10-18):
180 x 45 s = 2.25 h.  Baseline runs repeat along a line (one seed gives the
same labels at every dial setting), a cost taken so that each setting is
one ordinary pfd-compare run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

from pfd_tf._keras import tf
from pfd_tf.compare.comparison import run_comparison
from pfd_tf.compare.diagnostic import spearman
from pfd_tf.compare.stats import paired_t_test, t_two_sided_p
from pfd_tf.datasets.dial import generate_dial, oracle_quantities, simulate_dial
from pfd_tf.datasets.dial_world import DIAL_SETTINGS, ROWS_PER_ID_SETTINGS, DialWorld
from regimes_report import METHODS, channels_markdown, markdown, plot, same_rate_markdown



def t_quantile(df: int, level: float = 0.95) -> float:
    """t with P(|T| >= t) = 1 - level for Student's t with df degrees of freedom (bisection)."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 1 - level else (lo, mid)
    return 0.5 * (lo + hi)


def paired(differences: list[float]) -> dict:
    """Mean, 95 % confidence interval (t) and p of per-world paired differences."""
    test = paired_t_test(differences)
    n = len(differences)
    half = t_quantile(n - 1) * test["sd"] / math.sqrt(n) if n > 1 and test["sd"] is not None else float("nan")
    return {"per_world": differences, "mean": test["mean"], "ci95": half, "p": test["p"]}


def oracle(rows: int, per_id: float, share: float, seeds) -> dict:
    """The oracle quantities of the setting, averaged over the evaluation worlds' test days."""
    world = DialWorld(rows=rows, privileged_share=share, rows_per_id=per_id)
    each = [oracle_quantities(simulate_dial(world, s, latents=True), world) for s in seeds]
    return {k: statistics.fmean(q[k] for q in each) for k in each[0]}


def setting_result(record: dict, seeds) -> dict:
    """What the regimes table needs from one comparison's record (compare.json)."""
    rows = {row["method"]: row for row in record["summary"]}
    diag = {d["method"]: d["mean"] for d in record.get("diagnostic", [])}
    out = {"rates": record["chosen_rates"], "baseline_auc": statistics.fmean(rows["baseline"]["student_auc"]),
           "baseline_student_auc": rows["baseline"]["student_auc"]}
    for method in METHODS:
        row = rows[method]
        out[method] = paired(row["auc_minus_baseline"])
        out[method]["teacher_auc"] = statistics.fmean(row["teacher_auc"])
        out[method]["student_auc"] = statistics.fmean(row["student_auc"])
        out[method]["student_auc_per_world"] = row["student_auc"]
        out[method]["diagnostic"] = diag.get(method, {})
    return out


def setting_dir(args, per_id: float, share: float) -> str:
    return os.path.join(args.out, f"rpi{per_id:g}", f"rho{share:g}")


def world_configs(args, per_id: float, share: float):
    """seed -> the config of the setting's world of that seed, written on first use."""
    def world_config(seed: int) -> str:
        data_dir = os.path.join(setting_dir(args, per_id, share), f"data-{seed}")
        config = os.path.join(data_dir, "config.yaml")
        if not os.path.exists(config):  # written last: a present config means a whole world
            generate_dial(data_dir, rows=args.rows, seed=seed, privileged_share=share, rows_per_id=per_id)
        return config
    return world_config


def compare(args, per_id: float, share: float, out: str, modes: str, lambdas: str = "", extra=(),
            rates: str = "") -> dict:
    """One pfd-compare run of the setting (`run_comparison`), its record."""
    world_config = world_configs(args, per_id, share)
    return run_comparison(
        world_config(args.tune_seed), out, modes=modes, lambdas=lambdas, seeds=args.seeds, rates=rates or args.rates,
        overrides=[f"train.epochs={args.epochs}", *extra], config_for_seed=world_config, tune_seed=args.tune_seed,
        title=f"Dial world: rows per id {per_id:g}, privileged_share {share:g} (worlds {args.seeds})"
              + "".join(f", {item}" for item in extra),
        log=lambda line: None)


def run_all(args) -> list[dict]:
    settings = []
    for per_id in ROWS_PER_ID_SETTINGS:
        for share in DIAL_SETTINGS:
            print(f"== rows per id {per_id:g}, privileged_share {share:g}", flush=True)
            record = compare(args, per_id, share, setting_dir(args, per_id, share), "baseline," + ",".join(METHODS))
            seeds = [int(s) for s in args.seeds.split(",")]
            result = setting_result(record, seeds)
            result.update(rows_per_id=per_id, privileged_share=share, oracle=oracle(args.rows, per_id, share, seeds))
            print(f"   PFD - baseline {result['pfd']['mean']:+.4f} (p {result['pfd']['p']}), "
                  f"LUPI - baseline {result['lupi']['mean']:+.4f}", flush=True)
            settings.append(result)
    return settings


def channels(args, per_id: float, share: float) -> dict:
    """Which channel carries PFD's gain at one setting.  PFD's co-trained teacher reaches the student
    two ways: its soft labels, and its label loss training the embedding tables they share.  PFD at
    lambda 0 (shared tables, no soft label) joins the setting's comparison (its other runs are read
    back); PFD with model.sharing: independent (soft labels only) is a comparison of its own, whose
    baseline trains under the same override (a baseline has no teacher to share with)."""
    out = setting_dir(args, per_id, share)
    shared = compare(args, per_id, share, out, "baseline," + ",".join(METHODS), lambdas="0")
    alone = compare(args, per_id, share, os.path.join(out, "independent"), "baseline,pfd",
                    extra=("model.sharing=independent",))
    rows = {row["method"]: row for row in shared["summary"]}
    rows["pfd, sharing: independent"] = next(r for r in alone["summary"] if r["method"] == "pfd")
    rate_of = dict(shared["chosen_rates"], **{"pfd, sharing: independent": alone["chosen_rates"]["pfd"]})
    # The baseline at PFD's rate too: where the validation world chose them apart, how much of a gain is
    # the rate's.  The baseline's runs do not depend on the dial (same labels, same seed).
    rate = rate_of["pfd"]
    same = compare(args, per_id, share, os.path.join(out, f"baseline-lr{rate:g}"), "baseline", rates=f"{rate!r}")
    baseline_same = same["summary"][0]["student_auc"]
    out_rows = {"rows_per_id": per_id, "privileged_share": share}
    for method, label in (("pfd", "pfd (shared tables + soft labels)"), ("pfd λ=0", "pfd λ=0 (shared tables only)"),
                          ("pfd, sharing: independent", "pfd, sharing: independent (soft labels only)")):
        out_rows[f"{label}, rate {rate_of[method]:g}"] = paired(rows[method]["auc_minus_baseline"])
        if rate_of[method] == rate and rate != rate_of["baseline"]:
            out_rows[f"{label}, rate {rate:g} − baseline at {rate:g}"] = paired(
                [a - b for a, b in zip(rows[method]["student_auc"], baseline_same)])
    return out_rows


def baselines_at_rate(args) -> dict:
    """(rows per id, rate) -> the baseline's per-world student AUCs at that rate, from the comparisons
    ``channels`` trained (OUT/rpi<r>/rho<rho>/baseline-lr<rate>/); read only, nothing trains."""
    found = {}
    for per_id in ROWS_PER_ID_SETTINGS:
        for share in DIAL_SETTINGS:
            here = setting_dir(args, per_id, share)
            for name in sorted(os.listdir(here)) if os.path.isdir(here) else ():
                path = os.path.join(here, name, "compare.json")
                if name.startswith("baseline-lr") and os.path.exists(path):
                    with open(path, encoding="utf-8") as f:
                        record = json.load(f)
                    found[(per_id, record["chosen_rates"]["baseline"])] = record["summary"][0]["student_auc"]
    return found


def same_rate(settings: list[dict], baselines: dict) -> list[dict]:
    """Each method against the baseline trained at the method's own rate, where the validation world chose
    the two apart: how much of a measured gain is the rate's.  The baseline's runs at one rate serve every
    rho of a size (one seed gives the same regular columns and labels along the dial, and the baseline
    never reads the privileged column); a size whose baseline AUCs differ along the dial gets no row."""
    rows = []
    for per_id in ROWS_PER_ID_SETTINGS:
        line = [s for s in settings if s["rows_per_id"] == per_id]
        if len({tuple(s["baseline_student_auc"]) for s in line}) != 1:
            continue
        for s in line:
            for method in METHODS:
                rate = s["rates"][method]
                if rate != s["rates"]["baseline"] and (per_id, rate) in baselines:
                    rows.append({"rows_per_id": per_id, "privileged_share": s["privileged_share"], "method": method,
                                 "rate": rate, "baseline_rate": s["rates"]["baseline"], **paired(
                                     [a - b for a, b in zip(s[method]["student_auc_per_world"],
                                                            baselines[(per_id, rate)])])})
    return rows


def correlations(settings: list[dict]) -> dict:
    """Spearman's rank correlation of each predictor with the measured mean PFD gain: over every
    setting, and within each size."""
    predictors = {
        "diagnostic score": lambda s: s["pfd"]["diagnostic"].get("gain_score", float("nan")),
        "diagnostic noise left": lambda s: s["pfd"]["diagnostic"].get("noise_left", float("nan")),
        "teacher - baseline AUC": lambda s: s["pfd"]["teacher_auc"] - s["baseline_auc"],
        "oracle score": lambda s: s["oracle"]["noise_left"] * (1 - s["oracle"]["noise_left"]),
    }
    groups = {"all": settings}
    groups.update({f"{p:g} rows/id": [s for s in settings if s["rows_per_id"] == p] for p in ROWS_PER_ID_SETTINGS})
    return {name: {group: spearman([f(s) for s in chosen], [s["pfd"]["mean"] for s in chosen])
                   for group, chosen in groups.items()} for name, f in predictors.items()}


def count_runs(out: str) -> int:
    """Finished runs under `out` (their metrics.json)."""
    return sum("metrics.json" in files for _, _, files in os.walk(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("bench_out", "regimes"))
    parser.add_argument("--rows", type=int, default=60_000, help="rows of every world, train and test days")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--rates", default="0.001,0.002,0.004", help="the learning-rate grid of every method")
    parser.add_argument("--seeds", default="0,1,2", help="evaluation worlds (and training seeds)")
    parser.add_argument("--tune-seed", type=int, default=100, help="the validation world rates are chosen on")
    parser.add_argument("--docs", default="docs", help="where regimes.md and regimes.png go")
    parser.add_argument("--channels", default="", help="RPI:RHO,...: at these settings also split PFD's gain "
                        "into its channels (PFD at lambda 0; PFD with sharing: independent)")
    args = parser.parse_args()
    if str(args.tune_seed) in args.seeds.split(","):
        parser.error(f"--tune-seed {args.tune_seed} is one of --seeds: rates must be chosen on another world")
    tf.get_logger().setLevel("ERROR")
    os.makedirs(args.out, exist_ok=True)
    started, trained_before = time.perf_counter(), count_runs(args.out)
    settings = run_all(args)
    split = [channels(args, *map(float, item.split(":"))) for item in args.channels.split(",") if item.strip()]
    timing = os.path.join(args.out, "timing.jsonl")
    if count_runs(args.out) > trained_before:  # an invocation that only read finished runs back is not counted
        with open(timing, "a", encoding="utf-8") as f:
            f.write(json.dumps({"seconds": round(time.perf_counter() - started, 1)}) + "\n")
    with open(timing, encoding="utf-8") as f:
        seconds = sum(json.loads(line)["seconds"] for line in f if line.strip())
    corr, at_rate = correlations(settings), same_rate(settings, baselines_at_rate(args))
    with open(os.path.join(args.out, "regimes.json"), "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "channels": split, "same_rate": at_rate, "spearman": corr,
                   "wall_seconds": seconds, "args": vars(args)}, f, indent=2)
    text = markdown(settings, corr, args, seconds) + channels_markdown(split) + same_rate_markdown(at_rate)
    os.makedirs(args.docs, exist_ok=True)
    with open(os.path.join(args.docs, "regimes.md"), "w", encoding="utf-8") as f:
        f.write(text)
    plot(settings, corr, os.path.join(args.docs, "regimes.png"))
    print(text, flush=True)


if __name__ == "__main__":
    main()
