"""The sequential procedure behind `--until-conclusive`, on synthetic per-seed differences (no training):
its false-positive rate over hundreds of null runs stays at the stated 5% where testing at every look with
fixed 95% intervals does not; a large effect (a broken row) is found; a duplicated row is never declared
different; and the report's claims get the sequential verdict."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import t as t_dist

from attnlab.report.leaderboard import claim_rows
from attnlab.report.sequential import decide, looks_for, obf_spent, pending_cells, plan

LOOKS = looks_for(3, 10)  # 3, 4, …, 10 paired seeds
REPEATS = 2000
# one-sided binomial slack: 3 standard errors of a 5% rate over REPEATS runs
SLACK = 3 * math.sqrt(0.05 * 0.95 / REPEATS)


def test_spending_function_and_looks_by_hand() -> None:
    assert obf_spent(1.0) == pytest.approx(0.05)
    assert obf_spent(0.25) == pytest.approx(2 - 2 * 0.9999557, abs=1e-6)  # 2 − 2Φ(1.96 / 0.5 = 3.92)
    assert LOOKS == (3, 4, 5, 6, 7, 8, 9, 10)
    assert looks_for(3, 8, step=2) == (3, 5, 7, 8)
    with pytest.raises(ValueError):
        looks_for(5, 3)
    p = plan(LOOKS)
    assert list(p.boundaries) == sorted(p.boundaries, reverse=True)  # O'Brien–Fleming: strict early
    assert p.boundaries[-1] > 2.262157  # the last look pays for the earlier ones: above t₀.₉₇₅,₉
    assert p.boundary(2) is None and p.boundary(11) == p.boundaries[-1]


def null_runs(sd: float, seed: int) -> tuple[float, float]:
    """(rate at which the sequential procedure decides, rate at which naive looks at fixed 95% decide) over
    REPEATS null runs (true difference 0)."""
    diffs = sd * np.random.default_rng(seed).standard_normal((REPEATS, LOOKS[-1]))
    p = plan(LOOKS)
    sequential = sum(decide(list(d), p, "better").verdict in ("agrees", "disagrees") for d in diffs)
    crit = {n: float(t_dist.ppf(0.975, n - 1)) for n in LOOKS}
    naive = np.zeros(REPEATS, dtype=bool)
    for n in LOOKS:  # a 95% t interval after every seed, stopping at the first that excludes 0
        t = diffs[:, :n].mean(axis=1) / (diffs[:, :n].std(axis=1, ddof=1) / math.sqrt(n))
        naive |= np.abs(t) > crit[n]
    return sequential / REPEATS, float(naive.mean())


def test_false_positive_rate_over_repeated_null_runs() -> None:
    sequential, naive = null_runs(3.0, seed=11)
    assert sequential <= 0.05 + SLACK
    assert naive > 0.10  # peeking at fixed 95% intervals after every seed: the error this method prevents


def test_similar_claims_keep_the_rate_at_the_band_edge() -> None:
    """True difference exactly at the ±1 band: "agrees" (inside the band) is the false positive."""
    rng = np.random.default_rng(3)
    p = plan(LOOKS)
    wrong = sum(decide(list(1.0 + 1.5 * rng.standard_normal(10)), p, "similar").verdict == "agrees"
                for _ in range(REPEATS))
    assert wrong / REPEATS <= 0.05 + SLACK


def test_broken_row_is_detected_and_duplicate_is_not() -> None:
    rng = np.random.default_rng(4)
    p = plan(LOOKS)
    broken = decide(list(-12.0 + 2.0 * rng.standard_normal(10)), p, "better")
    assert broken.verdict == "disagrees" and broken.decided_at is not None and broken.decided_at <= 4
    exact_copy = decide([0.0] * 10, p, "better")  # a deterministic duplicate: identical scores
    assert exact_copy.verdict == "inconclusive" and not exact_copy.decided
    assert exact_copy.lo == exact_copy.hi == 0.0


def grid_records(effects: dict[str, float], seeds: range, sd: float = 1.0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    out = []
    for seed in seeds:
        base = 80 + sd * rng.standard_normal()
        for row, effect in effects.items():
            value = base + effect + (sd * rng.standard_normal() if row != "dot" else 0.0)
            out.append({"row": row, "task": "glue/sst2", "seed": seed, "metrics": {"val/score": value}})
    return out


def seq_meta(seeds: list[int], added: list[int]) -> dict[str, Any]:
    return {"rows": ["dot", "broken", "dup"], "tasks": ["glue/sst2"], "seeds": seeds, "added_seeds": added,
            "baseline": "dot", "sequential": {"looks": [3, 4, 5, 6], "alpha": 0.05},
            "claims": [{"row": "broken", "vs": "dot", "expect": "better", "text": "broken"},
                       {"row": "dup", "vs": "dot", "expect": "better", "text": "dup"}]}


def test_pending_cells_only_for_undecided_claims() -> None:
    meta = seq_meta([0, 1, 2], [3, 4, 5])
    records = grid_records({"dot": 0.0, "broken": -30.0, "dup": 0.0}, range(3))
    assert pending_cells(meta, records) == [("dot", "glue/sst2", 3), ("dup", "glue/sst2", 3)]
    claims = claim_rows(meta, records)
    assert claims[0]["sequential"]["verdict"] == "disagrees" and claims[0]["sequential"]["decided_at"] == 3
    assert claims[1]["sequential"]["verdict"] == "inconclusive"
    every = grid_records({"dot": 0.0, "broken": -30.0, "dup": 0.0}, range(6))
    done = [r for r in every if r["row"] != "broken" or r["seed"] < 3]
    assert pending_cells(meta, done) == []  # dup reached max seeds: nothing more to add
