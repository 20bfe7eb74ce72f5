"""Power and multiplicity: the minimum detectable effect of a paired comparison, p-values for a claim, Holm.

All three work from (mean, se, n): the mean of the per-seed differences row − vs, its standard error (sd/√n
for the seed-paired t; the bootstrap SE for seeds × examples) and the number of paired seeds; the reference
distribution is Student t with n − 1 degrees of freedom in both cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2, norm
from scipy.stats import t as student_t

from attnlab.report.stats import SIMILAR_BAND, Expect

ALPHA = 0.05
POWER = 0.80
Outcome = Literal["agrees", "disagrees"]
_MIDPOINTS = (np.arange(4000) + 0.5) / 4000


@lru_cache(maxsize=64)
def _scale_quantiles(df: int) -> np.ndarray:
    return np.sqrt(chi2.ppf(_MIDPOINTS, df) / df)  # quantiles of √(V/df), V ~ χ²_df


def power_at(effect: float, se: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided level-α t test (n − 1 df) to detect a true difference `effect` with standard
    error `se`: P(|T| > t_{1−α/2}) with T noncentral t, noncentrality effect / se."""
    df = n - 1
    crit = float(student_t.ppf(1 - alpha / 2, df))
    nc = abs(effect) / se
    if df > 200:  # t ≈ normal
        return float(norm.cdf(nc - crit) + norm.cdf(-nc - crit))
    # T = (Z + nc) / √(V/df), V ~ χ²_df: average the power given V over V's quantiles (midpoint rule on
    # 4000 probability cells; scipy's nct returns NaN for some df = 1 arguments)
    s = _scale_quantiles(df)
    return float(np.mean(norm.cdf(nc - crit * s) + norm.cdf(-nc - crit * s)))


def mde(se: float | None, n: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Minimum detectable effect: the smallest |true difference| the two-sided level-α paired t test finds
    with probability `power` (exact, noncentral t). For large n it tends to (z_{1−α/2} + z_power) · se
    = 2.80 · se. None without a standard error (n < 2); 0 when se is 0."""
    if se is None or n < 2 or not math.isfinite(se):
        return None
    if se == 0:
        return 0.0
    upper = 10.0 * se
    while power_at(upper, se, n, alpha) < power:  # two seeds (1 df) need a noncentrality near 50
        upper *= 4
    return float(brentq(lambda d: power_at(d, se, n, alpha) - power, 1e-9 * se, upper))


def t_cdf(x: float, mean: float, se: float, n: int) -> float:
    """P(estimate ≤ x) under the t approximation centred at `mean` with scale `se`; with se = 0 (identical
    differences, e.g. two rows with the same predictions) a point mass at `mean`, ½ at the point itself, so
    that a zero difference gets p = 1, not 0."""
    if se == 0:
        return 1.0 if x > mean else 0.0 if x < mean else 0.5
    return float(student_t.cdf((x - mean) / se, n - 1))


def claim_test(mean: float | None, se: float | None, n: int, expect: Expect, higher_is_better: bool = True,
               band: float = SIMILAR_BAND) -> tuple[float | None, Outcome | None]:
    """(two-sided p-value, the verdict a rejection supports) for one claim; (None, None) for n < 2.

    better / worse: H0 "no difference", p = 2 · min(P(T ≤ 0), P(T ≥ 0)); rejection supports "agrees" when the
    estimate lies on the expected side (lower for a lower-is-better metric), "disagrees" otherwise.
    similar: two tests, the smaller p wins — equivalence (TOST: H0 |Δ| ≥ band, p = 2 · max of the two one-sided
    p-values) supports "agrees"; non-equivalence (H0 |Δ| ≤ band on the estimate's side) supports "disagrees".
    p < 0.05 is then exactly the 95% interval rule of `stats.verdict` (the one-sided p-values are doubled).
    """
    if mean is None or se is None or n < 2:
        return None, None
    if expect == "similar":
        p_equal = 2 * max(1 - t_cdf(band, mean, se, n), t_cdf(-band, mean, se, n))
        beyond = band if mean >= 0 else -band
        p_apart = 2 * (t_cdf(beyond, mean, se, n) if mean >= 0 else 1 - t_cdf(beyond, mean, se, n))
        return (min(1.0, p_equal), "agrees") if p_equal <= p_apart else (min(1.0, p_apart), "disagrees")
    below = t_cdf(0.0, mean, se, n)
    p = min(1.0, 2 * min(below, 1 - below))
    good = (mean > 0) == higher_is_better
    if expect == "worse":
        good = not good
    return p, "agrees" if good else "disagrees"


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p-values: sort ascending, p_(i) · (m − i + 1), running maximum, capped
    at 1; m counts the p-values that are not None (None stays None)."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
