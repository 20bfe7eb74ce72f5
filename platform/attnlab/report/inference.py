"""Row-vs-row differences with eval-set sampling error: a paired bootstrap over seeds AND dev examples.

Design. Every seed of both rows is scored on the same dev examples, so seeds and examples are *crossed*
random factors: the mean difference over seeds carries seed noise (σ²_seed / n) and dev-set sampling noise
(σ²_example / N) that no number of seeds averages away. One bootstrap replicate
1. draws example weights once per task split (multinomial, N draws of N examples) — the same weights for
   every seed and for both rows (the pigeonhole / two-way bootstrap of Owen 2007, Ann. Appl. Stat. 1(2)),
2. recomputes each task's official score from the weighted confusion matrix (accuracy, binary F1, MCC;
   splits averaged as `tasks.metrics.task_score` does), for both rows, per seed,
3. resamples the seeds with replacement (the per-seed differences first spread by √(n/(n−1)), so that the
   bootstrap variance of their mean is the unbiased s²/n rather than (n−1)/n of it),
and the replicate's value is the mean over the resampled seeds of the (row − vs) metric. Like every two-way
bootstrap it counts the seed × example interaction more than once, so it overestimates the variance when that
term dominates (tests/report/test_inference.py measures +8% on a simulated crossed design): conservative.

The interval reported is mean ± t_{0.975, n−1} · SE_boot, with SE_boot the bootstrap standard deviation:
the Student quantile keeps it honest at three seeds, where percentile intervals of a 3-point bootstrap
are far too narrow. Tasks whose score is not a function of per-example class predictions (regression,
reading comprehension, language modelling) and records without `predictions` get no bootstrap; the
verdict then uses the seed-paired t interval alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from attnlab.predictions import Predictions, decode
from attnlab.report.grid import Grid
from attnlab.report.stats import CONFIDENCE
from attnlab.tasks import get_task

N_BOOT = 2000
CONFUSION_METRICS = ("accuracy", "f1", "mcc")


def confusion_scores(counts: np.ndarray, metric: str, k: int) -> np.ndarray:
    """(..., K·K) confusion counts indexed label·K + predicted → the metric as a fraction (..., ).
    F1 and MCC are binary with class 1 positive; undefined values (0/0) count as 0, as torchmetrics does."""
    c = counts.reshape(*counts.shape[:-1], k, k).astype(np.float64)  # (..., label, predicted)
    total = c.sum(axis=(-1, -2))
    if metric == "accuracy":
        return np.trace(c, axis1=-2, axis2=-1) / np.maximum(total, 1)
    tn, fp, fn, tp = c[..., 0, 0], c[..., 0, 1], c[..., 1, 0], c[..., 1, 1]
    if metric == "f1":
        return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    if metric == "mcc":
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return np.divide(tp * tn - fp * fn, den, out=np.zeros_like(tp), where=den > 0)
    raise ValueError(f"no confusion-matrix form for metric {metric!r}")


def example_scorable(task: str) -> bool:
    spec = get_task(task)
    return not (spec.is_lm or spec.is_regression or spec.is_reading_comprehension) and set(spec.metrics) <= set(
        CONFUSION_METRICS)


def task_score_from_counts(task: str, split_counts: Sequence[np.ndarray], k: int) -> np.ndarray:
    """`task_score` (percent) from per-split confusion counts, each (..., K·K)."""
    spec = get_task(task)
    per_metric = [np.mean([confusion_scores(c, m, k) for c in split_counts], axis=0) for m in spec.metrics]
    return 100.0 * np.mean(per_metric, axis=0)


def onehot_cells(p: Predictions) -> np.ndarray:
    """(N, K·K) indicator of each example's confusion cell."""
    k = p.num_classes
    cells = np.zeros((len(p.labels), k * k), dtype=np.float32)
    cells[np.arange(len(p.labels)), p.labels * k + p.predicted] = 1.0
    return cells


def score_replicates(task: str, p: Predictions, weights: Sequence[np.ndarray]) -> np.ndarray:
    """The task score under each replicate's example weights: (B,); weights[j] is (B, N_j) for split j."""
    cells = onehot_cells(p)
    counts = [w @ cells[s] for w, s in zip(weights, p.splits())]  # per split (B, K·K)
    return task_score_from_counts(task, counts, p.num_classes)


@dataclass(frozen=True)
class Bootstrap:
    mean: float  # mean over seeds of (row − vs), from the full data
    se: float  # bootstrap standard deviation of that mean
    n: int  # paired seeds
    lo: float | None  # mean ∓ t_{0.975, n−1} · se; None for n < 2
    hi: float | None
    replicates: np.ndarray  # (B,)


def t_from_se(mean: float, se: float, n: int) -> tuple[float | None, float | None]:
    if n < 2:
        return None, None
    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se
    return mean - half, mean + half


def paired_predictions(grid: Grid, row: str, vs: str, tasks: Sequence[str]) -> dict[int, dict[str, tuple[
        Predictions, Predictions]]] | None:
    """{seed: {task: (row's, vs's predictions)}} over the seeds where both rows have every task's predictions
    on the same dev labels; None when a task is not scorable from predictions."""
    if not tasks or not all(example_scorable(t) for t in tasks):
        return None
    out: dict[int, dict[str, tuple[Predictions, Predictions]]] = {}
    for seed in grid.seeds:
        pair: dict[str, tuple[Predictions, Predictions]] = {}
        for task in tasks:
            a = decode(grid.cells.get((row, seed), {}).get(task, {}).get("predictions"))
            b = decode(grid.cells.get((vs, seed), {}).get(task, {}).get("predictions"))
            if a is None or b is None or a.split_sizes != b.split_sizes or not np.array_equal(a.labels, b.labels):
                break
            pair[task] = (a, b)
        else:
            out[seed] = pair
    return out


def bootstrap_diff(grid: Grid, row: str, vs: str | None, tasks: Sequence[str], n_boot: int = N_BOOT,
                   seed: int = 0) -> Bootstrap | None:
    """Paired bootstrap (seeds × dev examples) of mean over seeds of [mean over `tasks` of score(row) − score(vs)].
    None when some task has no example-level predictions for a paired seed, or fewer than 2 seeds pair."""
    if vs is None:
        return None
    pairs = paired_predictions(grid, row, vs, tasks)
    if not pairs or len(pairs) < 2:
        return None
    rng = np.random.default_rng(seed)
    seeds = sorted(pairs)
    first = pairs[seeds[0]]
    diffs = np.zeros((len(seeds), n_boot))  # (S, B): per seed, per replicate
    full = np.zeros(len(seeds))
    for task in tasks:
        sizes = first[task][0].split_sizes
        # float32 counts are exact up to 2**24: (B, N) weights for MNLI's 9,815 examples take 79 MB, not 157
        weights = [rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float32) for n in sizes]
        ones = [np.ones((1, n), dtype=np.float32) for n in sizes]
        for i, s in enumerate(seeds):
            a, b = pairs[s][task]
            diffs[i] += score_replicates(task, a, weights) - score_replicates(task, b, weights)
            full[i] += float(score_replicates(task, a, ones)[0] - score_replicates(task, b, ones)[0])
    diffs /= len(tasks)
    full /= len(tasks)
    n = len(seeds)
    centre = diffs.mean(axis=0, keepdims=True)
    spread = centre + math.sqrt(n / (n - 1)) * (diffs - centre)  # unbiased seed variance under resampling
    pick = rng.integers(0, n, size=(n_boot, n))  # (B, S) resampled seeds
    replicates = spread[pick, np.arange(n_boot)[:, None]].mean(axis=1)  # (B,)
    mean, se = float(full.mean()), float(replicates.std(ddof=1))
    lo, hi = t_from_se(mean, se, n)
    return Bootstrap(mean, se, n, lo, hi, replicates)
