"""Adding seeds until a claim is decided, without inflating the error rate: a group-sequential paired t test
with O'Brien–Fleming-type alpha spending and repeated confidence intervals.

Method. The looks are planned before any extra seed runs: n₀ (the ablation's seeds), n₀ + 1, …, max_seeds
paired seeds. At look k the claim's per-seed differences d₁..d_{n_k} (in seed order) give
T_k(δ) = (mean − δ) / (sd / √n_k). The two-sided error α is spent over the looks by the Lan–DeMets (1983,
Biometrika 70:659) O'Brien–Fleming-type function α(τ) = 2 − 2Φ(z_{1−α/2} / √τ), τ = n_k / max_seeds
(O'Brien & Fleming 1979, Biometrics 35:549). The critical values c_k solve
P(|T_j(δ)| ≤ c_j for j < k, |T_k(δ)| > c_k) = α(τ_k) − α(τ_{k−1}) under normal differences with unknown
variance; that joint law does not depend on δ or σ (T is pivotal), so c_k is computed once by Monte Carlo
(`N_SIMS` paths, fixed seed: the same boundaries every time). Jennison & Turnbull (2000, *Group Sequential
Methods*, ch. 9) repeated confidence intervals mean ± c_k · sd / √n_k then cover the true difference at every
look simultaneously with probability 1 − α, so a verdict read off them at whichever look the run stops keeps
its stated error rate — for better / worse claims (0 excluded) and for similar claims (inside / outside the
band) alike. A claim is decided at its first look whose interval gives agrees or disagrees; that decision is
final (later seeds, added for other claims sharing a row, do not change it). Assumes per-seed differences
are independent and roughly normal; the tests check the false-positive rate on simulated nulls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import norm

from attnlab.report.grid import Grid, claim_metric
from attnlab.report.stats import Expect, mean_std, verdict
from attnlab.tasks import get_task

ALPHA = 0.05
N_SIMS = 40_000
METHOD = ("group-sequential paired t test, Lan–DeMets O'Brien–Fleming alpha spending, repeated 95% "
          "confidence intervals (Jennison & Turnbull 2000)")


def obf_spent(fraction: float, alpha: float = ALPHA) -> float:
    """α spent by information fraction τ ∈ (0, 1]: 2 − 2Φ(z_{1−α/2} / √τ)."""
    return float(2 - 2 * norm.cdf(norm.ppf(1 - alpha / 2) / math.sqrt(fraction)))


@dataclass(frozen=True)
class Plan:
    looks: tuple[int, ...]  # paired seeds at each look, increasing; the last is max_seeds
    boundaries: tuple[float, ...]  # critical |t| per look (inf: nothing spent there)
    alpha: float = ALPHA

    def boundary(self, n: int) -> float | None:
        """The critical value for n paired seeds: that of the last look ≤ n (a conservative choice when n
        falls between looks); None before the first look."""
        usable = [c for look, c in zip(self.looks, self.boundaries) if look <= n]
        return usable[-1] if usable else None


@lru_cache(maxsize=32)
def plan(looks: tuple[int, ...], alpha: float = ALPHA, sims: int = N_SIMS, seed: int = 0) -> Plan:
    """Boundaries for the given looks (each ≥ 2 seeds), calibrated on `sims` null paths."""
    if not looks or looks[0] < 2 or list(looks) != sorted(set(looks)):
        raise ValueError(f"looks must be increasing seed counts ≥ 2, got {looks}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((sims, looks[-1]))  # (S, n_max) null paired differences, σ = 1
    alive = np.ones(sims, dtype=bool)
    boundaries: list[float] = []
    spent_before = 0.0
    for look in looks:
        sample = z[:, :look]
        t = np.abs(sample.mean(axis=1) / (sample.std(axis=1, ddof=1) / math.sqrt(look)))  # (S,)
        spent = obf_spent(look / looks[-1], alpha)
        budget = round((spent - spent_before) * sims)  # paths allowed to cross first here
        spent_before = spent
        candidates = np.sort(t[alive])[::-1]
        if budget <= 0 or budget > len(candidates):
            boundaries.append(math.inf)
            continue
        c = float((candidates[budget - 1] + candidates[budget]) / 2) if budget < len(candidates) else 0.0
        boundaries.append(c)
        alive &= t <= c
    return Plan(tuple(looks), tuple(boundaries), alpha)


def looks_for(first: int, max_seeds: int, step: int = 1) -> tuple[int, ...]:
    """n₀, n₀ + step, …, up to and always including max_seeds."""
    if max_seeds < first:
        raise ValueError(f"--max-seeds {max_seeds} is below the {first} seeds already planned")
    looks = list(range(max(first, 2), max_seeds + 1, step))
    return tuple(looks if looks and looks[-1] == max_seeds else [*looks, max_seeds])


def repeated_interval(diffs: Sequence[float], boundary: float) -> tuple[float, float, float]:
    """(mean, lo, hi) = mean ± boundary · sd / √n."""
    mean, sd, n = mean_std(diffs)
    assert mean is not None and sd is not None
    half = boundary * sd / math.sqrt(n) if math.isfinite(boundary) else math.inf
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Decision:
    verdict: str  # agrees / disagrees / inconclusive (undecided so far) / no data
    decided_at: int | None  # paired seeds at the deciding look
    n: int  # paired seeds available
    mean: float | None
    lo: float | None  # the repeated CI at the deciding look, else at the latest look reached
    hi: float | None

    @property
    def decided(self) -> bool:
        return self.decided_at is not None


def decide(diffs: Sequence[float], p: Plan, expect: Expect, higher_is_better: bool = True) -> Decision:
    """Walk the planned looks over the per-seed differences (in seed order); stop at the first decision."""
    last: tuple[float, float, float] | None = None
    for look, c in zip(p.looks, p.boundaries):
        if look > len(diffs):
            break
        last = repeated_interval(diffs[:look], c)
        outcome = verdict(last[1], last[2], expect, higher_is_better, look)
        if outcome in ("agrees", "disagrees"):
            return Decision(outcome, look, len(diffs), *last)
    if last is None:
        return Decision("no data" if not diffs else "inconclusive", None, len(diffs), None, None, None)
    return Decision("inconclusive", None, len(diffs), *last)


def claim_decisions(grid: Grid, meta: Mapping[str, Any]) -> list[Decision]:
    """The sequential decision of each claim of `meta` on its own metric, under meta["sequential"]["looks"]."""
    seq = meta.get("sequential") or {}
    p = plan(tuple(int(n) for n in seq["looks"]), float(seq.get("alpha", ALPHA)))
    out = []
    for claim in meta.get("claims") or []:
        vs = claim.get("vs") or meta.get("baseline")
        metric = claim_metric(grid.tasks, claim.get("metric") or "score", claim.get("task"))
        diffs = grid.paired_diffs(claim["row"], vs, metric.fn) if claim["row"] in grid.rows else []
        out.append(decide(diffs, p, claim.get("expect", "better"), metric.higher_is_better))
    return out


def pending_cells(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """The cells to run next: for every claim still undecided and below max seeds, its two rows × every task ×
    the seeds up to its next look (meta["seeds"] then meta["added_seeds"], in that order), less those done."""
    grid = Grid.build(meta, records)
    seeds = [*(int(s) for s in meta.get("seeds") or []), *(int(s) for s in meta.get("added_seeds") or [])]
    looks = [int(n) for n in meta["sequential"]["looks"]]
    done = {(str(r["row"]), get_task(str(r["task"])).name, int(r["seed"])) for r in records}
    cells: set[tuple[str, str, int]] = set()
    for claim, decision in zip(meta.get("claims") or [], claim_decisions(grid, meta)):
        nxt = [n for n in looks if n > decision.n]
        if decision.decided or not nxt:
            continue
        vs = str(claim.get("vs") or meta.get("baseline"))
        cells |= {(str(row), task, seed) for row in (claim["row"], vs) for task in grid.tasks
                  for seed in seeds[:nxt[0]]}
    return sorted(cells - done)
