"""The comparison's PNG: student AUC by method, and by PFD's lambda (matplotlib, the `plot` extra)."""
from __future__ import annotations

import statistics
from typing import Sequence

from pfd_tf.compare.report import lambda_rows


def plot_missing() -> str | None:
    """None when matplotlib imports; else what to install."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'pfd_tf[plot]')"
    return None


def write_png(path: str, title: str, rows: Sequence[dict]) -> None:
    """Left: each method's mean held-out student AUC with its sd over seeds, the baseline's as a line.
    Right (with a lambda sweep): PFD's student AUC by lambda."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    def mean(values):
        return statistics.fmean(values) if values else float("nan")

    def sd(values):
        return statistics.stdev(values) if len(values) > 1 else 0.0

    sweep = lambda_rows(rows)
    panels = 2 if len(sweep) > 1 else 1
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    left = axes[0][0]
    names = [row["method"] for row in rows]
    left.bar(names, [mean(r["student_auc"]) for r in rows], yerr=[sd(r["student_auc"]) for r in rows],
             color=["#999999" if r["mode"] == "baseline" else "#3b75af" for r in rows], capsize=4)
    baseline = next((r for r in rows if r["mode"] == "baseline"), None)
    if baseline and baseline["student_auc"]:
        left.axhline(mean(baseline["student_auc"]), color="#555555", linestyle="--", linewidth=1, label="baseline")
        left.legend(loc="lower right")
    values = [v for r in rows for v in r["student_auc"]]
    if values:
        spread = max(values) - min(values)
        left.set_ylim(min(values) - max(spread, 0.002), max(values) + max(spread, 0.002))
    left.set_ylabel("held-out student AUC")
    left.set_title("by method (mean ± sd over seeds)")
    left.tick_params(axis="x", rotation=30)
    if panels == 2:
        right = axes[0][1]
        lambdas = [lam for lam, _ in sweep]
        right.errorbar(lambdas, [mean(r["student_auc"]) for _, r in sweep],
                       yerr=[sd(r["student_auc"]) for _, r in sweep], marker="o", capsize=4, label="PFD student")
        if baseline and baseline["student_auc"]:
            right.axhline(mean(baseline["student_auc"]), color="#555555", linestyle="--", linewidth=1,
                          label="baseline")
        right.set_xlabel("lambda")
        right.set_ylabel("held-out student AUC")
        right.set_title("PFD by lambda (each at its own rate)")
        right.legend(loc="lower right")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
