"""Text of the report: formatted numbers, tables (header + rows of strings), header lines, footnotes.

Shared by the Markdown and the HTML renderers, so both say exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attnlab.report import provenance
from attnlab.report.grid import BENCHMARK_SCORES, Grid, overall_tasks, primary_metric
from attnlab.report.verdict_tables import REFERENCE_NOTE, reference_lines
from attnlab.report.verdict_tables import claims_table as claims_table  # re-exported

Table = tuple[list[str], list[list[str]]]  # (header, rows)

NOTHING_HAND_TYPED = (
    "Every number in this report is computed by `attnlab.report` from the exported trial records "
    "(records.jsonl); nothing is hand-typed. The paper's figures are quoted from the ablation definition."
)


def num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def mean_pm_std(cell: Mapping[str, Any], planned_n: int) -> str:
    """ "84.20 ± 0.50"; "(n=k)" added when fewer seeds than planned; "84.20 (n=1)"; "—" without data."""
    n = cell["n"]
    if n == 0:
        return "—"
    if n == 1:
        return f"{num(cell['mean'])} (n=1)"
    text = f"{num(cell['mean'])} ± {num(cell['std'])}"
    return f"{text} (n={n})" if n != planned_n else text


def diff_ci(diff: Mapping[str, Any] | None) -> str:
    if diff is None:
        return "baseline"
    if diff["n"] == 0:
        return "—"
    if diff["lo"] is None:
        return f"{num(diff['mean'], signed=True)} (CI n/a, n={diff['n']})"
    return (
        f"{num(diff['mean'], signed=True)} [{num(diff['lo'], signed=True)}, {num(diff['hi'], signed=True)}]"
    )


def count(value: float | None) -> str:
    """Parameters: 1.23M / 456.7K."""
    if value is None:
        return "—"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def thousands(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def task_header(task: str, lower_is_better: bool) -> str:
    return f"{task} (ppl, lower is better)" if lower_is_better else task


def leaderboard_table(grid: Grid, rows: Sequence[Mapping[str, Any]], baseline: str | None) -> Table:
    planned = len(grid.seeds)
    benchmarks = [b for b in BENCHMARK_SCORES if rows and b in rows[0]["benchmarks"]]
    primary = primary_metric(grid.tasks)
    score_name = "Overall score" if primary.key == "score" else primary.label
    lower = {t: rows[0]["tasks"][t]["lower_is_better"] for t in grid.tasks} if rows else {}
    header = ["Rank", "Row", *(task_header(t, lower[t]) for t in grid.tasks)]
    header += [f"{BENCHMARK_SCORES[b][0]}¹" for b in benchmarks]
    header += [
        f"{score_name}²",
        "Seeds",
        "Params",
        "Train tok/s",
        "FLOPs/token (fwd)",
        "Peak mem (MiB)",
        f"Δ vs {baseline} (95% CI)³",
    ]
    body = []
    for row in rows:
        name = f"{row['row']} (baseline)" if row["baseline"] else row["row"]
        line = ["—" if row["rank"] is None else str(row["rank"]), name]
        every = [rec for by_task in grid.cells.values() for rec in by_task.values()]
        line += [mean_pm_std(row["tasks"][t], planned) + _deviates(grid, row["row"], t, every) for t in grid.tasks]
        line += [mean_pm_std(row["benchmarks"][b], planned) for b in benchmarks]
        line += [mean_pm_std(row["overall"], planned), str(row["overall"]["n"])]
        shared = row.get("throughput_shared", False)
        line += [count(row["params"]), thousands(row["train_tokens_per_s"]) + (f" {provenance.SHARED_MARK}" if shared
                                                                              else ""),
                 count(row.get("flops_per_token")), thousands(row["peak_mem_mib"])]
        body.append([*line, diff_ci(row["diff"])])
    body += reference_lines(grid, len(benchmarks), len(header))  # majority class, chance (classification)
    return header, body


def _deviates(grid: Grid, row: str, task: str, every: Sequence[Mapping[str, Any]]) -> str:
    """ " ‡" on a task cell with a record whose run settings differ from the report's majority."""
    mine = [by_task[task] for (r, _), by_task in grid.cells.items() if r == row and task in by_task]
    return f" {provenance.DEVIATES_MARK}" if mine and provenance.deviates(mine, every) else ""


def footnotes(grid: Grid, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    notes = [
        "Task cells: mean ± sample std (ddof=1) over seeds of `val/score`, the task's official score in "
        "percent (100 × the mean of its metrics; MNLI averages matched and mismatched); LM corpora show "
        "validation perplexity (lower is better). (n=k) marks a cell with fewer seeds than planned; "
        "with n=1 there is no std."
    ]
    if rows and "glue" in rows[0]["benchmarks"]:
        counted = rows[0]["benchmarks"]["glue"]["tasks"]
        partial = f" — partial: {len(counted)} of the 8 GLUE-score tasks" if len(counted) < 8 else ""
        notes.append(
            f"¹ GLUE score: per seed, the unweighted mean of the task scores of {', '.join(counted)}, "
            "then mean ± std over the seeds that have all of them. WNLI is excluded (BERT-paper "
            f"convention; the GLUE leaderboard includes it and scores the test sets){partial}."
        )
    if rows and "clue" in rows[0]["benchmarks"]:
        counted = rows[0]["benchmarks"]["clue"]["tasks"]
        shorts = {t.split("/")[1] for t in counted}
        six = len(shorts - {"cmnli"}) + ("cmnli" in shorts and "ocnli" not in shorts)
        partial = f" — partial: {six} of the 6 CLUE 1.1 classification tasks" if six < 6 else ""
        notes.append(
            f"¹ CLUE score: per seed, the mean accuracy × 100 over {', '.join(counted)} (CMNLI may stand in "
            f"for OCNLI), then mean ± std over the seeds that have all of them{partial}."
        )
    if rows and "clue_rc" in rows[0]["benchmarks"]:
        rc = rows[0]["benchmarks"]["clue_rc"]["tasks"]
        every = rows[0]["benchmarks"]["clue_all"]["tasks"]
        notes.append(
            f"¹ CLUE RC score: per seed, the mean task score over the reading-comprehension tasks {', '.join(rc)} "
            "(CMRC 2018: (EM + F1) / 2 of the official script; C3: accuracy × 100). CLUE overall: the unweighted "
            f"mean over every CLUE task run, {', '.join(every)}, each once — CLUE 1.0 averages all its tasks; "
            "its ChID is absent here (the FewCLUE ChID stand-in is never counted), so this is not CLUE 1.0's "
            "exact task set."
        )
    primary = primary_metric(grid.tasks)
    if primary.key == "score":
        overall = (
            "² Overall score: per seed, the unweighted mean of the task scores of "
            f"{', '.join(overall_tasks(grid.tasks))}; mean ± std over the seeds that have every one of "
            "them (their number is the Seeds column). Rank 1 = best overall score; ties share a rank."
        )
    else:
        overall = (
            f"² No classification task was run: rows are ranked by {primary.label} (rank 1 = lowest; "
            "ties share a rank); the Seeds column counts the seeds that have it."
        )
    notes += [
        overall,
        "³ Δ: per-seed difference row − baseline of the ranking metric² over the seeds both rows have; "
        "mean ± t₀.₉₇₅,ₙ₋₁ · sd / √n (sd with ddof=1, Student t from scipy). n/a with one paired seed.",
        "Params, training tokens/s, FLOPs/token and peak memory: means over the row's trials (task heads differ "
        "in size, so parameters can vary slightly across tasks).",
        provenance.MEMORY_NOTE,
    ]
    if reference_lines(grid, 0, 0):
        notes.append(REFERENCE_NOTE)
    return notes


def header_lines(meta: Mapping[str, Any], n_records: int) -> list[tuple[str, str]]:
    """(label, value) pairs for the top of the report; code-like values are marked by the renderers."""
    return [
        ("Paper", str(meta.get("paper", "—"))),
        ("Produced by", str(meta.get("command", "—"))),
        *([("Report rebuilt by", str(meta["report_command"]))] if meta.get("report_command") else []),
        ("Preset", str(meta.get("preset", "—"))),
        ("attnlab version", str(meta.get("attnlab_version", "—"))),
        ("Report built at commit", str(meta.get("git_commit", "—"))),
        ("Date", str(meta.get("date", "—"))),
        ("Trials", f"{n_records} records; seeds {', '.join(map(str, meta.get('seeds') or []))}"),
        ("Regenerate", str(meta.get("regenerate", "—"))),
    ]


CODE_LABELS = frozenset({"Produced by", "Report rebuilt by", "Regenerate", "Report built at commit"})


def speed_table(speed: Sequence[Mapping[str, Any]]) -> Table:
    order = {v: i for i, v in enumerate(dict.fromkeys(str(s["variant"]) for s in speed))}
    header = ["Variant", "Seq len", "fwd+bwd (ms)", "Peak mem (MiB)", "Decode (ms/token)"]
    body = [
        [
            str(s["variant"]),
            str(s["seq_len"]),
            num(s.get("fwd_bwd_ms")),
            num(s.get("peak_mem_mb"), 1),
            num(s.get("decode_ms_per_token"), 3),
        ]
        for s in sorted(speed, key=lambda s: (order[str(s["variant"])], int(s["seq_len"])))
    ]
    return header, body
