"""report.html: one self-contained page (inline CSS, PNGs as base64 data URIs, no scripts, no links), rendered
from the Jinja2 template `templates/report.html.j2` for ablation and sweep reports alike.

Autoescape is on, so every piece of text is HTML-escaped and a URL in a citation stays text and fetches nothing.
A report is a list of blocks (`Block`: kind, value), the same list the sweep's Markdown is rendered from.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from attnlab.report import provenance
from attnlab.report.data import ReportData
from attnlab.report.tables import (
    CODE_LABELS,
    NOTHING_HAND_TYPED,
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

VERDICTS = ("agrees", "disagrees", "inconclusive", "underpowered", "untestable here")
Block = tuple[str, Any]  # ("kv" | "quote" | "h2" | "table" | "classed_table" | "notes" | "list" | "plots", value)


def code_spans(text: object) -> Markup:
    """Escape, then show `code` spans (the only Markdown our texts use) as <code>."""
    parts = str(escape(str(text))).split("`")
    return Markup("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)))


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("attnlab.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["code_spans"] = code_spans
    env.filters["data_uri"] = data_uri
    env.globals.update(verdicts=VERDICTS, code_labels=CODE_LABELS)
    return env


def render_page(title: str, blocks: Sequence[Block]) -> str:
    return _environment().get_template("report.html.j2").render(title=title, blocks=list(blocks))


def render_html(data: ReportData, plots: Sequence[Path] = ()) -> str:
    meta = data.meta
    title = str(meta.get("title") or meta.get("name") or "attnlab report")
    blocks: list[Block] = [
        ("kv", [*header_lines(meta, len(data.records)), *provenance.header_lines(data.records)]),
        ("quote", NOTHING_HAND_TYPED), ("h2", "Leaderboard"),
        ("classed_table", (leaderboard_table(data.grid, data.rows, data.baseline),
                           ["baseline" if row["baseline"] else "" for row in data.rows])),
        ("notes", footnotes(data.grid, data.rows)),
    ]
    if data.claims:
        blocks += [("h2", "Paper vs here"), ("table", claims_table(data.claims)), ("notes", stats_rules(data.claims)),
                   ("h2", "Per-task verdicts"), ("table", task_verdicts_table(data.claims))]
    checks, diagnostics = preconditions_table(data.claims), diagnostics_table(data.grid)
    if data.claims or diagnostics is not None:
        blocks.append(("h2", "What this preset can test"))
        blocks += [("table", checks)] if checks[1] else []
        blocks += [("list", precondition_lines(data.claims))] if data.claims else []
        blocks += [("h2", "Diagnostics"), ("table", diagnostics)] if diagnostics is not None else []
    if plots:
        blocks += [("h2", "Plots"), ("plots", list(plots))]
    if data.speed:
        blocks += [("h2", "Speed and memory"), ("table", speed_table(data.speed))]
    gpu_cost = list(data.meta.get("gpu_cost") or [])
    if gpu_cost:
        blocks += [("h2", "Cost of the gpu preset (estimate)"), ("list", gpu_cost)]
    if data.notes:
        blocks += [("h2", "Notes"), ("list", data.notes)]
    return render_page(title, blocks)
