"""Verdicts per claim, overall and per task, with their power and Holm adjustment.

Vocabulary (the README's "How to read a verdict" says the same):
- agrees: the 95% interval of (row − vs) lies on the paper's side of 0 (better / worse), or inside
  ±SIMILAR_BAND (similar);
- disagrees: it lies on the other side of 0, or entirely outside ±SIMILAR_BAND;
- underpowered: neither, and the runs could not have detected the effect in question: the minimum detectable
  effect (80% power, α = 0.05, two-sided) exceeds the paper's effect (`effect:` in the claim, in points of
  the claim's metric) — or, for "similar", exceeds the band;
- inconclusive: neither, although the runs had the power (MDE ≤ effect), or the paper's effect is not stated;
- no data: no paired seed;
- untestable here: a precondition the claim states (`requires:`, see `preconditions.py`) is not met on this task;
  overall, when it is not met on every task the claim is judged on. The numbers stay; the claim leaves the Holm
  families (its Holm verdict is None, shown "—").
The interval is the paired bootstrap over seeds × dev examples (`inference.py`) where every task involved
has per-example predictions, else the seed-paired t interval; the MDE and the p-value come from the same
source. Perplexity enters as the raw difference row − vs in perplexity units, lower = better (the sign is
flipped inside the rule, not in the numbers shown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attnlab.report.grid import BENCHMARK_SCORES, Grid, Metric, overall_tasks, task_metric
from attnlab.report.inference import bootstrap_diff
from attnlab.report.power import ALPHA, claim_test, holm, mde
from attnlab.report.preconditions import UNTESTABLE, overall_testable
from attnlab.report.stats import SIMILAR_BAND, Expect, mean_std, t_interval, verdict


def metric_tasks(metric: Metric, tasks: Sequence[str]) -> list[str] | None:
    """The tasks whose scores a metric averages (so the bootstrap can rescore them), None if it is not a
    mean of task scores (perplexity, a task's secondary metric)."""
    if metric.key == "score":
        return overall_tasks(tasks)
    if metric.key in BENCHMARK_SCORES:
        return BENCHMARK_SCORES[metric.key][1](tasks)
    if metric.key.endswith(":score"):
        return [metric.key.rsplit(":", 1)[0]]
    return None


def judged_tasks(metric: Metric, tasks: Sequence[str]) -> list[str]:
    """The tasks a claim's metric is computed from (a task's metric: that task)."""
    counted = metric_tasks(metric, tasks)
    if counted is not None:
        return counted
    return [metric.key.rsplit(":", 1)[0]] if ":" in metric.key else list(tasks)


def final_verdict(base: str, expect: Expect, mde_value: float | None, effect: float | None) -> str:
    """`stats.verdict`'s agrees / disagrees / inconclusive / no data, with "underpowered" for an undecided
    claim whose effect (the band for "similar") is below the minimum detectable effect."""
    if base != "inconclusive" or mde_value is None:
        return base
    threshold = SIMILAR_BAND if expect == "similar" else effect
    return "underpowered" if threshold is not None and mde_value > abs(threshold) else base


def compare(grid: Grid, row: str, vs: str | None, metric: Metric, expect: Expect, effect: float | None,
            scope: str) -> dict[str, Any]:
    """Every statistic of one (claim, scope): t and bootstrap intervals, MDEs, p-value, verdict."""
    diffs = grid.paired_diffs(row, vs, metric.fn) if row in grid.rows else []
    mean, lo, hi, n = t_interval(diffs)
    sd = mean_std(diffs)[1]
    se_t = sd / n**0.5 if sd is not None else None
    tasks = metric_tasks(metric, grid.tasks)
    boot = bootstrap_diff(grid, row, vs, tasks) if tasks and row in grid.rows else None
    if boot is not None and boot.n != n:  # pairing must cover the same seeds as the t column
        boot = None
    source = "bootstrap" if boot is not None else "t"
    use_lo, use_hi, use_se = (boot.lo, boot.hi, boot.se) if boot is not None else (lo, hi, se_t)
    base = verdict(use_lo, use_hi, expect, metric.higher_is_better, n)
    mde_t, mde_boot = mde(se_t, n), (mde(boot.se, n) if boot is not None else None)
    p, supports = claim_test(mean, use_se, n, expect, metric.higher_is_better)
    return {
        "scope": scope, "metric": metric.label, "higher_is_better": metric.higher_is_better,
        "t": {"mean": mean, "lo": lo, "hi": hi, "n": n, "sd": sd, "se": se_t},
        "boot": None if boot is None else {"mean": boot.mean, "lo": boot.lo, "hi": boot.hi, "n": boot.n,
                                           "se": boot.se},
        "source": source, "mde_t": mde_t, "mde_boot": mde_boot, "mde": mde_boot if boot is not None else mde_t,
        "effect": effect, "p": p, "supports": supports,
        "verdict": final_verdict(base, expect, mde_boot if boot is not None else mde_t, effect),
    }


def apply_holm(entries: Sequence[dict[str, Any]], expect_of: Sequence[Expect]) -> None:
    """Add holm_p and holm_verdict: the supported verdict when the Holm-adjusted p < α, else inconclusive /
    underpowered by the same rule as the unadjusted verdict."""
    for entry in entries:
        if entry["verdict"] == UNTESTABLE:  # not tested: outside the family
            entry["holm_p"], entry["holm_verdict"] = None, None
    kept = [(e, x) for e, x in zip(entries, expect_of) if e["verdict"] != UNTESTABLE]
    adjusted = holm([e["p"] for e, _ in kept])
    for (entry, expect), p_adj in zip(kept, adjusted):
        entry["holm_p"] = p_adj
        if p_adj is None:
            entry["holm_verdict"] = entry["verdict"]
        elif p_adj < ALPHA:
            entry["holm_verdict"] = entry["supports"]
        else:
            entry["holm_verdict"] = final_verdict("inconclusive", expect, entry["mde"], entry["effect"])


def claim_effect(claim: Mapping[str, Any]) -> float | None:
    value = claim.get("effect")
    return None if value is None else float(value)


def mark_testable(entry: dict[str, Any], testable: str) -> dict[str, Any]:
    entry["testable"] = testable
    if testable == "no":
        entry["verdict"] = UNTESTABLE
    return entry


def claim_verdicts(grid: Grid, claims: Sequence[Mapping[str, Any]], metrics: Sequence[Metric],
                   vs_of: Sequence[str | None],
                   testable: Sequence[Mapping[str, str]] | None = None) -> list[dict[str, Any]]:
    """Per claim: {"overall": compare(...), "tasks": [compare(...) per task of the grid]}; Holm applied over
    the claims' overall tests (one family) and over all (claim, task) tests (a second family), untestable ones
    left out. `testable`: per claim, {task: "yes" / "no" / "unchecked"} from its preconditions."""
    out: list[dict[str, Any]] = []
    by_task_of = list(testable) if testable is not None else [{} for _ in claims]
    for claim, metric, vs, by_task in zip(claims, metrics, vs_of, by_task_of):
        expect: Expect = claim.get("expect", "better")
        effect = claim_effect(claim)
        overall = mark_testable(compare(grid, claim["row"], vs, metric, expect, effect, "overall"),
                                overall_testable(judged_tasks(metric, grid.tasks), by_task))
        # the paper's effect (points of score, or perplexity units) carries over to the tasks measured in them
        # (a claim about one task is its own per-task verdict: no second row)
        per_task = [mark_testable(compare(grid, claim["row"], vs, task_metric(t), expect,
                                          effect if task_metric(t).higher_is_better == metric.higher_is_better
                                          else None, t), by_task.get(t, "yes"))
                    for t in grid.tasks if claim.get("task") is None]
        out.append({"overall": overall, "tasks": per_task})
    expects: list[Expect] = [c.get("expect", "better") for c in claims]
    apply_holm([c["overall"] for c in out], expects)
    apply_holm([t for c in out for t in c["tasks"]], [e for e, c in zip(expects, out) for _ in c["tasks"]])
    return out
