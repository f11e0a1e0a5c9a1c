"""The paired t-test over seeds (no SciPy): is a method's per-seed difference from the baseline non-zero,
and the t-based 95% confidence interval of its mean."""
from __future__ import annotations

import math
import statistics
from typing import Sequence


def paired_t_test(differences: Sequence[float]) -> dict:
    """Two-sided one-sample t-test of `differences` (method - baseline, one per seed) against 0.

    Returns {"n", "mean", "sd", "t", "p", "ci95"}: t, p and ci95 are None
    with fewer than two seeds; p is 0 or 1 and ci95 the mean itself when
    every difference is equal.  ci95 = mean ± t_{0.975, n-1} sd / sqrt(n).
    """
    n = len(differences)
    mean = statistics.fmean(differences) if n else float("nan")
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "t": None, "p": None, "ci95": None}
    sd = statistics.stdev(differences)
    if sd == 0:
        return {"n": n, "mean": mean, "sd": 0.0, "t": None, "p": 1.0 if mean == 0 else 0.0, "ci95": [mean, mean]}
    t = mean / (sd / math.sqrt(n))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "t": t, "p": t_two_sided_p(t, n - 1), "ci95": [mean - half, mean + half]}


def t_quantile(probability: float, df: int) -> float:
    """The `probability` quantile (above 0.5) of Student's t with `df` degrees of freedom, by bisection on
    the two-sided p: P(|T| >= q) = 2 (1 - probability)."""
    target = 2.0 * (1.0 - probability)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > target:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_two_sided_p(middle, df) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2)."""
    return regularized_beta(df / (df + t * t), df / 2.0, 0.5)


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by the continued fraction of Numerical Recipes (Section 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float, iterations: int = 300, eps: float = 1e-15) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iterations + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h
