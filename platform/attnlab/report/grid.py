"""The results grid (rows × tasks × seeds) built from trial records, and per-seed metrics on it.

A *metric function* maps the cells of one (row, seed) — {task: record} — to one number, or None
when a cell it needs is missing or not finite. Every aggregate in the report (task score, GLUE /
CLUE score, overall score) is such a function, evaluated per seed and then averaged over seeds, so
that differences between rows can be paired by seed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from attnlab.tasks import get_task
from attnlab.tasks.spec import CLUE_RC_TASKS, CLUE_SCORE_TASKS, GLUE_SCORE_TASKS, LOWER_IS_BETTER

Record = Mapping[str, Any]
Cells = Mapping[str, Record]  # task -> record, for one (row, seed)
MetricFn = Callable[[Cells], "float | None"]

CLUE_COUNTED = (*CLUE_SCORE_TASKS, "cmnli")  # as `clue_score`: CMNLI may stand in for OCNLI


@dataclass(frozen=True)
class Metric:
    key: str  # "score", "glue", "clue", "glue/sst2", "lm/wikitext2:perplexity", ...
    label: str  # for tables and axes
    fn: MetricFn
    higher_is_better: bool = True


def is_lm(task: str) -> bool:
    return get_task(task).is_lm


def task_metric_key(task: str) -> str:
    """The record key of a task's official number: val/score, or val/perplexity for LM corpora."""
    return "val/perplexity" if is_lm(task) else "val/score"


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def cell_value(cells: Cells, task: str, key: str | None = None) -> float | None:
    record = cells.get(task)
    if record is None:
        return None
    return finite(record.get("metrics", {}).get(key or task_metric_key(task)))


def mean_of_tasks(tasks: Sequence[str]) -> MetricFn:
    """Per seed: the unweighted mean of the tasks' scores, or None unless every task has one."""

    def fn(cells: Cells) -> float | None:
        values = [cell_value(cells, task) for task in tasks]
        if not tasks or any(v is None for v in values):
            return None
        return math.fsum(v for v in values if v is not None) / len(values)

    return fn


def glue_tasks(tasks: Sequence[str]) -> list[str]:
    """The GLUE tasks run that count toward the GLUE score (BERT convention: WNLI excluded)."""
    return [
        t for t in tasks if get_task(t).benchmark == "glue" and get_task(t).short_name in GLUE_SCORE_TASKS
    ]


def clue_tasks(tasks: Sequence[str]) -> list[str]:
    """The CLUE classification tasks run (the classic CLUE score)."""
    return [t for t in tasks if get_task(t).benchmark == "clue" and get_task(t).short_name in CLUE_COUNTED]


def clue_rc_tasks(tasks: Sequence[str]) -> list[str]:
    """The CLUE reading-comprehension tasks run (CMRC 2018, C3; never the FewCLUE ChID stand-in)."""
    return [t for t in tasks if get_task(t).benchmark == "clue" and get_task(t).short_name in CLUE_RC_TASKS]


def clue_all_tasks(tasks: Sequence[str]) -> list[str]:
    """Every counted CLUE task run, once each (CLUE 1.0 averages all its tasks); empty unless a
    reading-comprehension task ran, so the overall CLUE average appears only next to the RC average."""
    return clue_tasks(tasks) + clue_rc_tasks(tasks) if clue_rc_tasks(tasks) else []


# Benchmark averages a report shows when their tasks ran: key → (column label, counted tasks).
BENCHMARK_SCORES: dict[str, tuple[str, Callable[[Sequence[str]], list[str]]]] = {
    "glue": ("GLUE score", glue_tasks),
    "clue": ("CLUE score", clue_tasks),
    "clue_rc": ("CLUE RC score", clue_rc_tasks),
    "clue_all": ("CLUE overall", clue_all_tasks),
}


def overall_tasks(tasks: Sequence[str]) -> list[str]:
    """Classification tasks averaged into the overall score: those counted by a benchmark score
    (so WNLI is left out), or every classification task when none is counted."""
    counted = set(glue_tasks(tasks)) | set(clue_tasks(tasks)) | set(clue_rc_tasks(tasks))
    classification = [t for t in tasks if not is_lm(t)]
    return [t for t in classification if t in counted] or classification


def primary_metric(tasks: Sequence[str]) -> Metric:
    """What the leaderboard ranks by: the overall score, or, for an LM-only grid, the first LM
    corpus's perplexity."""
    counted = overall_tasks(tasks)
    if counted:
        return Metric("score", f"overall score ({len(counted)} tasks)", mean_of_tasks(counted))
    lm = [t for t in tasks if is_lm(t)]
    if not lm:
        raise ValueError("the report needs at least one task")
    return task_metric(lm[0], "perplexity")


def task_metric(task: str, metric: str = "score") -> Metric:
    """One task's metric per seed: "score" is its official number (perplexity for LM corpora);
    any other name reads `val/<name>` from the record."""
    spec = get_task(task)
    if "@" in metric:
        return curve_metric(spec.name, metric)
    name = ("perplexity" if spec.is_lm else "score") if metric == "score" else metric
    key = f"val/{name}"

    def fn(cells: Cells) -> float | None:
        return cell_value(cells, spec.name, key)

    higher = name not in LOWER_IS_BETTER
    label = f"{spec.name} {name}" + ("" if higher else " (lower is better)")
    return Metric(f"{spec.name}:{name}", label, fn, higher)


def curve_value(record: Record | None, key: str, step: int) -> float | None:
    """The learning curve `key` at the first validation at or after `step` (None without such a point)."""
    if record is None:
        return None
    points = [p for p in (record.get("curves") or {}).get(key, []) if len(p) == 2 and p[0] >= step]
    return finite(min(points)[1]) if points else None


def curve_metric(task: str, metric: str) -> Metric:
    """`score@300`: the task's validation score at the first validation at or after step 300 (from the record's
    learning curve) — how far a row got early in training, e.g. for "converges faster" claims."""
    name, _, at = metric.partition("@")
    if not at.isdigit():
        raise ValueError(f"claim metric {metric!r}: expected <metric>@<step>, e.g. score@100")
    spec = get_task(task)
    name = ("perplexity" if spec.is_lm else "score") if name == "score" else name
    step = int(at)

    def fn(cells: Cells) -> float | None:
        return curve_value(cells.get(spec.name), f"val/{name}", step)

    higher = name not in LOWER_IS_BETTER
    return Metric(f"{spec.name}:{name}@{step}", f"{spec.name} {name} at step {step}", fn, higher)


def claim_metric(tasks: Sequence[str], metric: str = "score", task: str | None = None) -> Metric:
    """The metric a claim is judged on: a task's metric when `task` is given, otherwise "score"
    (the primary metric), "glue" / "glue_score", "clue" / "clue_score", "clue_rc", "clue_all", or "perplexity"
    (first LM task)."""
    if task is not None:
        return task_metric(task, metric)
    if metric == "score":
        return primary_metric(tasks)
    if metric in ("glue", "glue_score", "clue", "clue_score"):
        bench = metric.split("_")[0]
        counted = glue_tasks(tasks) if bench == "glue" else clue_tasks(tasks)
        return Metric(bench, f"{bench.upper()} score", mean_of_tasks(counted))
    if metric in ("clue_rc", "clue_all"):
        label, counted_of = BENCHMARK_SCORES[metric]
        return Metric(metric, label, mean_of_tasks(counted_of(tasks)))
    lm = [t for t in tasks if is_lm(t)]
    if metric == "perplexity" and lm:
        return task_metric(lm[0], "perplexity")
    raise ValueError(f"unknown claim metric {metric!r} (without a task): use score, glue, clue, clue_rc, "
                     "clue_all or perplexity")


DIAGNOSTIC_PREFIXES = ("attn/", "data/")  # per-layer attention diagnostics and data diagnostics in record metrics
_LAYER = re.compile(r"^attn/attn\d+/")  # attn/attn0/random/rel_change → attn/random/rel_change


def record_measure(record: Record, pattern: str) -> float | None:
    """The mean of a record's finite metrics whose key matches `pattern` (fnmatch: `attn/*/mix/dot` covers every
    layer), None when none does."""
    values = [finite(v) for k, v in (record.get("metrics") or {}).items() if fnmatchcase(str(k), pattern)]
    found = [v for v in values if v is not None]
    return math.fsum(found) / len(found) if found else None


def record_diagnostics(record: Record) -> dict[str, float]:
    """The record's `attn/…` and `data/…` metrics, each averaged over layers (the `attnN/` part stripped)."""
    groups: dict[str, list[float]] = {}
    for key, value in (record.get("metrics") or {}).items():
        number = finite(value)
        if str(key).startswith(DIAGNOSTIC_PREFIXES) and number is not None:
            groups.setdefault(_LAYER.sub("attn/", str(key)), []).append(number)
    return {key: math.fsum(values) / len(values) for key, values in groups.items()}


@dataclass
class Grid:
    """Trial records indexed by (row, seed) → {task: record}; the last record of a cell wins."""

    rows: list[str]
    tasks: list[str]
    seeds: list[int]
    cells: dict[tuple[str, int], dict[str, Record]]
    issues: list[str] = field(default_factory=list)  # data problems the report must state

    @classmethod
    def build(cls, meta: Mapping[str, Any], records: Sequence[Record]) -> Grid:
        rows = list(meta.get("rows") or [])
        tasks = [get_task(t).name for t in meta.get("tasks") or []]
        seeds = [int(s) for s in meta.get("seeds") or []]
        # seeds added to undecided claims only (`--until-conclusive`): not every row has them, none is missing
        added = [int(s) for s in meta.get("added_seeds") or [] if int(s) not in seeds]
        seeds += added
        cells: dict[tuple[str, int], dict[str, Record]] = {}
        duplicates = 0
        for record in records:
            row, task, seed = str(record["row"]), get_task(record["task"]).name, int(record["seed"])
            # Never drop data the meta did not announce: unknown rows, tasks and seeds are appended.
            rows += [row] if row not in rows else []
            tasks += [task] if task not in tasks else []
            seeds += [seed] if seed not in seeds else []
            by_task = cells.setdefault((row, seed), {})
            duplicates += task in by_task
            by_task[task] = record
        grid = cls(rows, tasks, seeds, cells)
        if duplicates:
            grid.issues.append(
                f"{duplicates} duplicate record(s) for the same cell: the last one given counts."
            )
        missing = [(r, t, s) for r in rows for t in tasks for s in seeds
                   if t not in cells.get((r, s), {}) and (s not in added or (r, s) in cells)]
        if missing:
            listed = ", ".join(f"{r} × {t} × seed {s}" for r, t, s in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            grid.issues.append(f"{len(missing)} missing cell(s) (crashed or not run): {listed}{more}.")
        bad = [
            (r, t, s) for (r, s), by_task in cells.items() for t in by_task if cell_value(by_task, t) is None
        ]
        if bad:
            listed = ", ".join(f"{r} × {t} × seed {s}" for r, t, s in bad[:20])
            grid.issues.append(f"{len(bad)} cell(s) without a finite value are left out: {listed}.")
        return grid

    def per_seed(self, row: str, fn: MetricFn) -> dict[int, float]:
        """{seed: value} over the seeds where `fn` is defined for this row."""
        values = {}
        for seed in self.seeds:
            value = fn(self.cells.get((row, seed), {}))
            if value is not None:
                values[seed] = value
        return values

    def paired_diffs(self, row: str, vs: str | None, fn: MetricFn) -> list[float]:
        """Per-seed differences row − vs over the seeds where both rows have a value."""
        if vs is None:
            return []
        a, b = self.per_seed(row, fn), self.per_seed(vs, fn)
        return [a[s] - b[s] for s in self.seeds if s in a and s in b]

    def row_records(self, row: str) -> list[Record]:
        return [rec for (r, _), by_task in self.cells.items() if r == row for rec in by_task.values()]

    def cell_records(self, row: str, task: str) -> list[Record]:
        """The records of one (row, task), one per seed that has it."""
        return [rec for s in self.seeds if (rec := self.cells.get((row, s), {}).get(task)) is not None]

    def measure(self, row: str, task: str, pattern: str) -> tuple[float | None, int]:
        """(mean, n): the mean over the (row, task) records of `record_measure`; records without a matching
        metric do not count (n of those that do; None, 0 when none)."""
        values = [v for rec in self.cell_records(row, task) if (v := record_measure(rec, pattern)) is not None]
        return (math.fsum(values) / len(values) if values else None), len(values)

    def diagnostics(self) -> dict[str, dict[tuple[str, str], float]]:
        """{measure: {(row, task): mean over seeds of the layer-averaged value}} for every `attn/` / `data/`
        metric that some record has."""
        sums: dict[str, dict[tuple[str, str], list[float]]] = {}
        for row in self.rows:
            for task in self.tasks:
                for rec in self.cell_records(row, task):
                    for key, value in record_diagnostics(rec).items():
                        sums.setdefault(key, {}).setdefault((row, task), []).append(value)
        return {key: {cell: math.fsum(v) / len(v) for cell, v in by_cell.items()}
                for key, by_cell in sorted(sums.items())}
