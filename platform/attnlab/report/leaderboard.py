"""Leaderboard and "paper vs here" rows as plain data, and the CSV export.

Everything is computed from the trial records; `tables.py` turns these rows into text.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attnlab.report.grid import (
    BENCHMARK_SCORES,
    Grid,
    Metric,
    MetricFn,
    Record,
    claim_metric,
    primary_metric,
    task_metric,
)
from attnlab.report.preconditions import check_requirements, task_testable
from attnlab.report.provenance import shared_throughput
from attnlab.report.sequential import claim_decisions
from attnlab.report.stats import Expect, mean_std, rank, t_interval, verdict
from attnlab.report.verdicts import claim_verdicts

COST_KEYS = {"params": "params", "train_tokens_per_s": "train_tokens_per_s", "peak_mem_mib": "peak_mem_mib",
             "flops_per_token": "flops_per_token"}


def summary(values: Sequence[float]) -> dict[str, Any]:
    mean, std, n = mean_std(values)
    return {"mean": mean, "std": std, "n": n}


def diff_summary(diffs: Sequence[float]) -> dict[str, Any]:
    mean, lo, hi, n = t_interval(diffs)
    return {"mean": mean, "lo": lo, "hi": hi, "n": n}


def paired_diff(
    records: Sequence[Record], row: str, vs: str, metric_fn: MetricFn
) -> tuple[float | None, float | None, float | None, int]:
    """Mean of the per-seed differences row − vs and its 95% t interval: (mean, lo, hi, n).

    `metric_fn` maps one (row, seed)'s {task: record} to a number (see `grid.py`); only seeds
    where both rows have a value are paired. lo and hi are None for n < 2.
    """
    grid = Grid.build({}, records)
    return t_interval(grid.paired_diffs(row, vs, metric_fn))


def _cost_mean(records: Sequence[Record], key: str) -> float | None:
    values = []
    for record in records:
        value = record.get("cost", {}).get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            values.append(float(value))
    return mean_std(values)[0]


def grid_leaderboard(grid: Grid, baseline: str | None) -> list[dict[str, Any]]:
    primary = primary_metric(grid.tasks)
    benchmarks = {key: counted_of(grid.tasks) for key, (_, counted_of) in BENCHMARK_SCORES.items()}
    rows: list[dict[str, Any]] = []
    for name in grid.rows:
        tasks = {}
        for task in grid.tasks:
            metric = task_metric(task)
            tasks[task] = summary(list(grid.per_seed(name, metric.fn).values()))
            tasks[task]["lower_is_better"] = not metric.higher_is_better
        scores = {}
        for bench, counted in benchmarks.items():
            if counted:
                scores[bench] = summary(
                    list(grid.per_seed(name, claim_metric(grid.tasks, bench).fn).values())
                )
                scores[bench]["tasks"] = counted
        overall = summary(list(grid.per_seed(name, primary.fn).values()))
        records = grid.row_records(name)
        row: dict[str, Any] = {
            "row": name,
            "baseline": name == baseline,
            "tasks": tasks,
            "benchmarks": scores,
        }
        row["overall"] = overall
        row.update({out: _cost_mean(records, key) for out, key in COST_KEYS.items()})
        row["throughput_shared"] = shared_throughput(records)  # tokens/s measured with --workers > 1
        if row["params"] is not None:
            row["params"] = round(row["params"])  # a count; the mean over task heads is not fractional
        has_baseline = baseline in grid.rows and name != baseline
        row["diff"] = diff_summary(grid.paired_diffs(name, baseline, primary.fn)) if has_baseline else None
        rows.append(row)
    ranks = rank([r["overall"]["mean"] for r in rows], primary.higher_is_better)
    for row, position in zip(rows, ranks):
        row["rank"] = position
    return rows


def leaderboard_rows(meta: Mapping[str, Any], records: Sequence[Record]) -> list[dict[str, Any]]:
    """One dict per ablation row, in meta order (rows only seen in the records follow):

    row, baseline (bool), rank (1 = best primary score; None without one),
    tasks: {task: {mean, std, n, lower_is_better}},
    benchmarks: {"glue"|"clue"|"clue_rc"|"clue_all": {mean, std, n, tasks}} for the benchmarks present
    (clue_rc and clue_all only when CMRC 2018 or C3 ran; see `grid.BENCHMARK_SCORES`),
    overall: {mean, std, n} of the primary metric (see `grid.primary_metric`),
    params, train_tokens_per_s, peak_mem_mib, flops_per_token (means over the row's trials; None where no record
    has one), throughput_shared (any of its tokens/s measured while several workers shared the cores),
    diff: {mean, lo, hi, n} of row − baseline on the primary metric, paired by seed (None for the baseline).
    """
    return grid_leaderboard(Grid.build(meta, records), meta.get("baseline"))


def grid_claims(grid: Grid, meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    paper = meta.get("paper_numbers") or {}
    out = []
    for claim in meta.get("claims") or []:
        row, vs = claim["row"], claim.get("vs") or meta.get("baseline")
        # the claim's own figures; the file-level paper_numbers only for paper claims that state none (older files),
        # never for our own hypotheses
        own = claim.get("numbers")
        if isinstance(own, dict):
            paper_row, paper_vs = own.get("row"), own.get("vs")
        elif claim.get("kind", "paper") == "paper":
            paper_row, paper_vs = paper.get(row), paper.get(vs)
        else:
            paper_row = paper_vs = None
        expect: Expect = claim.get("expect", "better")
        metric: Metric = claim_metric(grid.tasks, claim.get("metric") or "score", claim.get("task"))
        diff = diff_summary(grid.paired_diffs(row, vs, metric.fn)) if row in grid.rows else diff_summary([])
        out.append(
            {
                "text": claim.get("text", ""),
                "row": row,
                "vs": vs,
                "expect": expect,
                "metric": metric.label,
                "higher_is_better": metric.higher_is_better,
                "paper_row": paper_row,
                "paper_vs": paper_vs,
                "diff": diff,
                "verdict": verdict(diff["lo"], diff["hi"], expect, metric.higher_is_better, diff["n"]),
                "effect": claim.get("effect"),
                "kind": claim.get("kind") or "paper",  # old meta: every claim was the paper's
                "source": claim.get("source"),
                "preconditions": check_requirements(grid, claim),
                "_metric": metric,
                "_vs": vs,
            }
        )
    stats = claim_verdicts(grid, meta.get("claims") or [], [c.pop("_metric") for c in out],
                           [c.pop("_vs") for c in out], [task_testable(c["preconditions"]) for c in out])
    for claim, detail in zip(out, stats):
        # the verdict shown: bootstrap (seeds × examples) where predictions exist, else the t interval;
        # "underpowered" where the paper's effect is below the minimum detectable effect
        claim.update(verdict=detail["overall"]["verdict"], holm_verdict=detail["overall"]["holm_verdict"],
                     stats=detail["overall"], per_task=detail["tasks"], testable=detail["overall"]["testable"])
    if meta.get("sequential"):  # seeds were added until decided: the repeated-CI verdict is the one to read
        for claim, decision in zip(out, claim_decisions(grid, meta)):
            claim["sequential"] = dataclasses.asdict(decision)
    return out


def claim_rows(meta: Mapping[str, Any], records: Sequence[Record]) -> list[dict[str, Any]]:
    """One dict per meta claim: text, row, vs, expect, metric (label), higher_is_better, paper_row,
    paper_vs, diff {mean, lo, hi, n} (row − vs paired by seed), effect (the paper's, or None), kind (paper /
    ours), source, verdict and holm_verdict (see `verdicts.py`; "untestable here" where a precondition is not
    met, Holm None), stats (the overall comparison), per_task (one per grid task), preconditions (one per
    precondition × task, see `preconditions.py`) and testable (yes / partly / no / unchecked)."""
    return grid_claims(Grid.build(meta, records), meta)


def csv_columns(tasks: Sequence[str], benchmarks: Sequence[str]) -> list[str]:
    columns = ["rank", "row", "baseline"]
    for task in tasks:
        columns += [f"{task} mean", f"{task} std", f"{task} n"]
    for bench in benchmarks:
        columns += [f"{bench} score mean", f"{bench} score std", f"{bench} score n"]
    columns += ["overall mean", "overall std", "overall n", "params", "train_tokens_per_s", "peak_mem_mib",
                "flops_per_token", "train_tokens_per_s_shared"]
    return [*columns, "diff mean", "diff ci95 lo", "diff ci95 hi", "diff n"]


def write_csv(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str], path: Path) -> Path:
    """Numbers at full precision, one column per statistic; empty where undefined."""
    benchmarks = [b for b in BENCHMARK_SCORES if rows and b in rows[0]["benchmarks"]]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(csv_columns(tasks, benchmarks))
        for row in rows:
            line: list[Any] = [row["rank"], row["row"], int(row["baseline"])]
            for cell in [*(row["tasks"][t] for t in tasks), *(row["benchmarks"][b] for b in benchmarks)]:
                line += [cell["mean"], cell["std"], cell["n"]]
            overall, diff = row["overall"], row["diff"] or {}
            line += [overall["mean"], overall["std"], overall["n"]]
            line += [row["params"], row["train_tokens_per_s"], row["peak_mem_mib"], row.get("flops_per_token"),
                     int(row.get("throughput_shared", False))]
            line += [diff.get("mean"), diff.get("lo"), diff.get("hi"), diff.get("n")]
            writer.writerow(["" if v is None else v for v in line])
    return path
