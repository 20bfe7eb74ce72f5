"""The Markdown report (leaderboard.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attnlab.report import provenance
from attnlab.report.data import ReportData, compute
from attnlab.report.grid import Record
from attnlab.report.tables import (
    CODE_LABELS,
    NOTHING_HAND_TYPED,
    Table,
    claims_table,
    footnotes,
    header_lines,
    leaderboard_table,
    speed_table,
)
from attnlab.report.verdict_tables import (
    diagnostics_table,
    precondition_lines,
    preconditions_table,
    stats_rules,
    task_verdicts_table,
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    header, body = table
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def can_test_section(data: ReportData) -> list[str]:
    """## What this preset can test: the claims' preconditions as measured, one line per claim, the diagnostics."""
    checks, diagnostics = preconditions_table(data.claims), diagnostics_table(data.grid)
    if not data.claims and diagnostics is None:
        return []
    out = ["", "## What this preset can test", ""]
    if checks[1]:
        out += [markdown_table(checks), ""]
    out += [f"- {line}" for line in precondition_lines(data.claims)]
    if diagnostics is not None:
        out += ["", "### Diagnostics", "", markdown_table(diagnostics)]
    return out


def render_markdown(data: ReportData, plots: Sequence[str] = ()) -> str:
    meta = data.meta
    out = [f"# {meta.get('title') or meta.get('name') or 'attnlab report'}", ""]
    for label, value in [*header_lines(meta, len(data.records)), *provenance.header_lines(data.records)]:
        out.append(f"- {label}: `{value}`" if label in CODE_LABELS else f"- {label}: {value}")
    out += ["", f"> {NOTHING_HAND_TYPED}", "", "## Leaderboard", ""]
    out += [markdown_table(leaderboard_table(data.grid, data.rows, data.baseline)), ""]
    out += [f"- {note}" for note in footnotes(data.grid, data.rows)]
    if data.claims:
        out += ["", "## Paper vs here", "", markdown_table(claims_table(data.claims)), ""]
        out += [f"- {rule}" for rule in stats_rules(data.claims)]
        out += ["", "### Per-task verdicts", "", markdown_table(task_verdicts_table(data.claims))]
    out += can_test_section(data)
    if plots:
        out += ["", "## Plots", ""] + [f"![{name}]({name})" for name in plots]
    if data.speed:
        out += ["", "## Speed and memory", "", markdown_table(speed_table(data.speed))]
    gpu_cost = meta.get("gpu_cost") or []
    if gpu_cost:
        out += ["", "## Cost of the gpu preset (estimate)", ""] + [f"- {line}" for line in gpu_cost]
        out += [f"- breakdown: `attnlab reproduce {meta.get('name')} --preset gpu --dry-run`"]
    if data.notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in data.notes]
    return "\n".join(out) + "\n"


def format_markdown(
    meta: Mapping[str, Any],
    records: Sequence[Record],
    speed: Sequence[Mapping[str, Any]] | None = None,
    plots: Sequence[str] = (),
) -> str:
    """The whole leaderboard.md text; `plots` are image file names to link (relative to the .md)."""
    return render_markdown(compute(meta, records, speed), plots)
