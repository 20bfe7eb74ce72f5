"""The report's arithmetic: mean ± sample std, the paired-by-seed t interval, verdicts, Pareto fronts.

Pure functions on plain floats, so the tests can check them against numbers worked out by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from scipy.stats import ttest_1samp

Expect = Literal["better", "worse", "similar"]
Verdict = Literal["agrees", "disagrees", "inconclusive", "underpowered", "no data"]

CONFIDENCE = 0.95
# An "expect: similar" claim agrees when the whole 95% CI of row − vs lies within ±SIMILAR_BAND
# (points of score, or units of the metric, e.g. perplexity).
SIMILAR_BAND = 1.0


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None, int]:
    """(mean, sample std with ddof=1, n); the std is None for n < 2, both are None for n = 0."""
    n = len(values)
    if n == 0:
        return None, None, 0
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None, 1
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance), n


def t_interval(diffs: Sequence[float]) -> tuple[float | None, float | None, float | None, int]:
    """(mean, lo, hi, n): mean ± t_{0.975, n−1} · sd / √n, scipy's one-sample t interval of the paired
    differences (`scipy.stats.ttest_1samp(...).confidence_interval`); lo and hi are None for n < 2."""
    mean, sd, n = mean_std(diffs)
    if mean is None or sd is None:
        return mean, None, None, n
    if sd == 0.0:  # every seed moved by the same amount: a zero-width interval (scipy may warn and give NaN)
        return mean, mean, mean, n
    ci = ttest_1samp(list(diffs), 0.0).confidence_interval(CONFIDENCE)
    return mean, float(ci.low), float(ci.high), n


def verdict(
    lo: float | None, hi: float | None, expect: Expect, higher_is_better: bool = True, n: int | None = None
) -> Verdict:
    """Compare a 95% CI [lo, hi] of (row − vs) with what the paper expects.

    better / worse: "agrees" when the CI excludes 0 on the expected side, "disagrees" when it
    excludes 0 on the other side, "inconclusive" when it contains 0. For a lower-is-better metric
    (perplexity) "better" means a negative difference.
    similar: "agrees" when the CI lies within [−SIMILAR_BAND, +SIMILAR_BAND], "disagrees" when it
    lies entirely outside that band (no overlap), "inconclusive" otherwise.
    No interval (n < 2): "inconclusive", or "no data" when n == 0.
    """
    if lo is None or hi is None:
        return "no data" if n == 0 else "inconclusive"
    if lo > hi:
        raise ValueError(f"CI lower bound {lo} exceeds upper bound {hi}")
    if expect == "similar":
        if lo >= -SIMILAR_BAND and hi <= SIMILAR_BAND:
            return "agrees"
        if hi < -SIMILAR_BAND or lo > SIMILAR_BAND:
            return "disagrees"
        return "inconclusive"
    if expect not in ("better", "worse"):
        raise ValueError(f"expect must be 'better', 'worse' or 'similar', not {expect!r}")
    if not higher_is_better:  # turn "lower is better" into "higher is better"
        lo, hi = -hi, -lo
    if expect == "worse":
        lo, hi = -hi, -lo
    if lo > 0:
        return "agrees"
    if hi < 0:
        return "disagrees"
    return "inconclusive"


def rank(values: Sequence[float | None], higher_is_better: bool = True) -> list[int | None]:
    """Competition ranks ("1224"): 1 = best, ties share the best rank, None values stay unranked."""
    present = [v for v in values if v is not None]
    ranks: list[int | None] = []
    for v in values:
        if v is None:
            ranks.append(None)
        else:
            ranks.append(1 + sum((p > v) if higher_is_better else (p < v) for p in present))
    return ranks


def pareto_front(
    xs: Sequence[float], ys: Sequence[float], x_lower_is_better: bool, y_higher_is_better: bool = True
) -> list[int]:
    """Indices of the non-dominated points, sorted by increasing x.

    A point is dominated when another is at least as good on both axes and strictly better on one.
    """
    sx = [(-x if not x_lower_is_better else x) for x in xs]  # to "lower is better"
    sy = [(-y if y_higher_is_better else y) for y in ys]  # to "lower is better"
    front = []
    for i in range(len(xs)):
        dominated = any(
            sx[j] <= sx[i] and sy[j] <= sy[i] and (sx[j] < sx[i] or sy[j] < sy[i]) for j in range(len(xs))
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (xs[i], ys[i]))
