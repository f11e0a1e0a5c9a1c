"""The regimes benchmark's report: DOCS/regimes.md's tables and DOCS/regimes.png (`benchmarks/regimes.py`).

Apart from the runs so that the tables and the curve can be rewritten from a
finished OUT (every run read back) and read in one sitting.
"""
from __future__ import annotations

METHODS = ("pfd", "lupi")
"""The methods set against the baseline at every setting."""


def markdown(settings: list[dict], corr: dict, args, seconds: float) -> str:
    """The command, the gains by setting beside the oracle and the diagnostic, the oracle quantities, and the
    rank correlations (`regimes.correlations`)."""
    def gain(g):
        per = ", ".join(f"{d:+.4f}" for d in g["per_world"])
        return f"{g['mean']:+.4f} ± {g['ci95']:.4f} ({per}) | {g['p']:.2f}" if g["p"] is not None else per

    lines = ["# When does distillation help? The dial world", "",
             f"`python benchmarks/regimes.py --out {args.out} --rows {args.rows} --epochs {args.epochs} "
             f"--rates {args.rates} --seeds {args.seeds} --tune-seed {args.tune_seed}"
             + (f" --channels {args.channels}" if args.channels else "") + "` "
             f"({seconds / 3600:.1f} h of wall time, summed over the invocations that trained, on the shared 2-core "
             "machine).",
             "", f"Held-out student AUC differences from the baseline, per world ({args.seeds}), their mean ± the half-width "
             "of the 95 % t confidence interval, and the paired t-test's p.  Oracle: from the world's own "
             "parameters (the evaluation worlds' test days).  Diagnostic: pfd-compare's, from the PFD runs.", "",
             "| rows/id | rho | oracle student / teacher AUC | oracle noise left | baseline AUC | PFD teacher AUC "
             "| PFD − baseline (worlds) | p | LUPI − baseline (worlds) | p | noise left | score | teacher ECE "
             "| rates b/pfd/lupi |", "|---" * 14 + "|"]
    for s in settings:
        o, d, r = s["oracle"], s["pfd"]["diagnostic"], s["rates"]
        lines.append(f"| {s['rows_per_id']:g} | {s['privileged_share']:g} | {o['student_auc']:.3f} / "
                     f"{o['teacher_auc']:.3f} | {o['noise_left']:.3f} | {s['baseline_auc']:.4f} | "
                     f"{s['pfd']['teacher_auc']:.4f} | {gain(s['pfd'])} | {gain(s['lupi'])} | "
                     f"{d.get('noise_left', float('nan')):.3f} | {d.get('gain_score', float('nan')):.3f} | "
                     f"{d.get('teacher_ece', float('nan')):.4f} | "
                     f"{r['baseline']:g}/{r['pfd']:g}/{r['lupi']:g} |")
    lines += ["", "The hypothesis' quantities from the world's own parameters (`oracle_quantities`, mean over the "
              "evaluation worlds' test days): P(y | x) = p, the PFD teacher's target T = P(y | x, x*), LUPI's "
              "P(y | x*); E[T(1 − T)] = E[Var(y | x, x*)]; noise left = E[T(1 − T)] / E[p(1 − p)]; the soft "
              "label's noise around p, E[Var(T | x)] = E[p(1 − p)] − E[T(1 − T)].", "",
              "| rows/id | rho | student AUC (p) | PFD teacher AUC (T) | LUPI teacher AUC | E[p(1 − p)] "
              "| E[Var(y given x, x*)] | noise left | E[Var(T given x)] |", "|---" * 9 + "|"]
    lines += [f"| {s['rows_per_id']:g} | {s['privileged_share']:g} | {s['oracle']['student_auc']:.4f} | "
              f"{s['oracle']['teacher_auc']:.4f} | {s['oracle']['lupi_auc']:.4f} | "
              f"{s['oracle']['student_mean_pq']:.4f} | {s['oracle']['teacher_mean_pq']:.4f} | "
              f"{s['oracle']['noise_left']:.3f} | {s['oracle']['soft_label_noise']:.4f} |" for s in settings]
    groups = list(next(iter(corr.values())))
    lines += ["", "Spearman's rank correlation with the measured mean PFD − baseline:", "",
              "| predictor | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{v:+.2f}" for v in by.values()) + " |" for name, by in corr.items()]
    return "\n".join(lines) + "\n"


def channels_markdown(split: list[dict]) -> str:
    """The table of `regimes.channels`: which channel carries PFD's gain."""
    if not split:
        return ""
    lines = ["", "Which channel carries PFD's gain (`--channels`): student AUC minus the baseline's per world, "
             "mean ± 95 % CI, p; each variant at its own rate chosen on the validation world (the baseline's in "
             "the comparison's; a row \"− baseline at r\": against the baseline trained at that rate instead).", "",
             "| rows/id | rho | variant | per world | mean ± CI | p |", "|---|---|---|---|---|---|"]
    for c in split:
        for name, g in c.items():
            if isinstance(g, dict):
                lines.append(f"| {c['rows_per_id']:g} | {c['privileged_share']:g} | {name} | "
                             + ", ".join(f"{d:+.4f}" for d in g["per_world"])
                             + f" | {g['mean']:+.4f} ± {g['ci95']:.4f} | {g['p']:.2f} |")
    return "\n".join(lines) + "\n"


def same_rate_markdown(rows: list[dict]) -> str:
    """The table of `regimes.same_rate`: each method against the baseline trained at the method's rate."""
    if not rows:
        return ""
    lines = ["", "Against the baseline at the method's own rate, where the validation world chose the baseline's "
             "apart (the baseline's runs at that rate, from `--channels`, serve every rho of the size: the baseline "
             "never reads the privileged column and one seed gives the same labels along the dial).", "",
             "| rows/id | rho | method − baseline at the method's rate | per world | mean ± CI | p |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['rows_per_id']:g} | {r['privileged_share']:g} | {r['method']} at {r['rate']:g} (the baseline "
              f"chose {r['baseline_rate']:g}) | " + ", ".join(f"{d:+.4f}" for d in r["per_world"])
              + f" | {r['mean']:+.4f} ± {r['ci95']:.4f} | {r['p']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(settings: list[dict], corr: dict, path: str) -> None:
    """PFD's and LUPI's gain along the dial, one line per size (mean, 95 % CI, each world a dot), and the
    diagnostic's score against the measured gain."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    sizes = list(dict.fromkeys(s["rows_per_id"] for s in settings))
    colors = dict(zip(sizes, ("#3b75af", "#d9822b", "#3a923a", "#c03d3e")))
    shift = {p: 0.016 * (i - (len(sizes) - 1) / 2) for i, p in enumerate(sizes)}  # side by side at each rho
    for ax, method in zip(axes, METHODS):
        for per_id in sizes:
            mine = [s for s in settings if s["rows_per_id"] == per_id]
            x = [s["privileged_share"] + shift[per_id] for s in mine]
            ax.errorbar(x, [s[method]["mean"] for s in mine], yerr=[s[method]["ci95"] for s in mine], marker="o",
                        capsize=4, color=colors[per_id], label=f"{per_id:g} rows per id (mean, 95 % CI)")
            for xi, s in zip(x, mine):
                ax.scatter([xi] * len(s[method]["per_world"]), s[method]["per_world"], s=10,
                           color=colors[per_id], alpha=0.5)
        ax.axhline(0, color="#555555", linewidth=1, linestyle="--")
        ax.set_xlabel("privileged_share rho (share of the label noise x* explains)")
        ax.set_ylabel(f"{method.upper()} − baseline student AUC")
        ax.set_title(f"{method.upper()}: per-world paired differences (dots)")
        ax.legend(loc="best", fontsize=8)
    ax = axes[2]
    for per_id in sizes:
        mine = [s for s in settings if s["rows_per_id"] == per_id]
        ax.scatter([s["pfd"]["diagnostic"].get("gain_score", float("nan")) for s in mine],
                   [s["pfd"]["mean"] for s in mine], color=colors[per_id], label=f"{per_id:g} rows per id")
    ax.axhline(0, color="#555555", linewidth=1, linestyle="--")
    ax.set_xlabel("diagnostic score: noise left x (1 − noise left)")
    ax.set_ylabel("PFD − baseline student AUC (mean over worlds)")
    ax.set_title(f"diagnostic vs measured gain (Spearman {corr['diagnostic score']['all']:+.2f})")
    ax.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
