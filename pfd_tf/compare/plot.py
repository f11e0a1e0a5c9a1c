"""The comparison's PNG (matplotlib, the `plot` extra): student AUC by method, each method's paired
differences from the baseline world by world, and PFD's student AUC by lambda.

The differences are the comparison's evidence: worlds (seeds) differ far more
from each other than methods do within a world (CVR: sd 0.019 across worlds,
against differences of 0.002), so means ± sd across worlds hide a gain that
every world shows.  The middle panel draws each world's difference and the
t-based 95% confidence interval of their mean (`stats.paired_t_test`).
"""
from __future__ import annotations

import statistics
from typing import Sequence

from pfd_tf.compare.report import lambda_rows

BASELINE_GREY, METHOD_BLUE = "#999999", "#3b75af"


def plot_missing() -> str | None:
    """None when matplotlib imports; else what to install."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'pfd_tf[plot]')"
    return None


def paired_points(rows: Sequence[dict]) -> list[dict]:
    """What the paired panel draws, per method with differences: {"method", "seeds", "differences", "mean",
    "ci95"} (ci95 None with fewer than two worlds)."""
    out = []
    for row in rows:
        test = row.get("paired_t_test")
        if not row.get("auc_minus_baseline") or not test:
            continue
        out.append({"method": row["method"], "seeds": row["paired_seeds"], "differences": row["auc_minus_baseline"],
                    "mean": test["mean"], "ci95": test.get("ci95")})
    return out


def _mean(values):
    return statistics.fmean(values) if values else float("nan")


def _sd(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def write_png(path: str, title: str, rows: Sequence[dict]) -> None:
    """Left: each method's mean held-out student AUC ± sd over worlds. Middle: method − baseline per world,
    with the mean and its 95% CI. Right (with a lambda sweep): PFD's student AUC by lambda."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    trained = [r for r in rows if r["student_auc"]]
    paired = paired_points(rows)
    sweep = [(lam, r) for lam, r in lambda_rows(rows) if r["student_auc"]]
    panels = [_by_method] + ([_paired] if paired else []) + ([_by_lambda] if len(sweep) > 1 else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.4), squeeze=False)
    baseline = next((r for r in trained if r["mode"] == "baseline" and r["lambda"] is None), None)
    for axis, panel in zip(axes[0], panels):
        panel(axis, trained, paired, sweep, baseline)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _by_method(axis, trained, paired, sweep, baseline) -> None:
    names = [row["method"] for row in trained]
    axis.bar(names, [_mean(r["student_auc"]) for r in trained], yerr=[_sd(r["student_auc"]) for r in trained],
             color=[BASELINE_GREY if r is baseline else METHOD_BLUE for r in trained], capsize=4)
    if baseline:
        axis.axhline(_mean(baseline["student_auc"]), color="#555555", linestyle="--", linewidth=1, label="baseline")
        axis.legend(loc="lower right")
    values = [v for r in trained for v in r["student_auc"]]
    if values:
        spread = max(values) - min(values)
        axis.set_ylim(min(values) - max(spread, 0.002), max(values) + max(spread, 0.002))
    axis.set_ylabel("held-out student AUC")
    axis.set_title("by method (mean ± sd over worlds)")
    axis.tick_params(axis="x", rotation=30)


def _paired(axis, trained, paired, sweep, baseline) -> None:
    markers = "osD^v<>p*h"
    seeds = sorted({s for p in paired for s in p["seeds"]})
    for i, item in enumerate(paired):
        for seed, difference in zip(item["seeds"], item["differences"]):
            axis.plot(i - 0.12, difference, linestyle="none", marker=markers[seeds.index(seed) % len(markers)],
                      color="#777777", markersize=5, label=f"world {seed}" if i == 0 else None)
        ci = item["ci95"]
        below, above = (item["mean"] - ci[0], ci[1] - item["mean"]) if ci else (0.0, 0.0)
        axis.errorbar(i + 0.12, item["mean"], yerr=[[below], [above]], fmt="o", color=METHOD_BLUE, capsize=5,
                      label="mean, 95% CI" if i == 0 else None)
    axis.axhline(0.0, color="#555555", linestyle="--", linewidth=1)
    axis.set_xticks(range(len(paired)), [p["method"] for p in paired], rotation=30)
    axis.set_xlim(-0.6, len(paired) - 0.4)
    axis.set_ylabel("student AUC − baseline's, same world")
    axis.set_title("paired differences per world (t-based 95% CI)")
    axis.legend(loc="best", fontsize="small")


def _by_lambda(axis, trained, paired, sweep, baseline) -> None:
    lambdas = [lam for lam, _ in sweep]
    axis.errorbar(lambdas, [_mean(r["student_auc"]) for _, r in sweep], yerr=[_sd(r["student_auc"]) for _, r in sweep],
                  marker="o", capsize=4, label="PFD student")
    if baseline:
        axis.axhline(_mean(baseline["student_auc"]), color="#555555", linestyle="--", linewidth=1, label="baseline")
    axis.set_xlabel("lambda")
    axis.set_ylabel("held-out student AUC")
    axis.set_title("PFD by lambda (each at its own grid point)")
    axis.legend(loc="lower right")
