"""report.html: one self-contained page (inline CSS, PNGs as base64 data URIs, no scripts, no links).

Every piece of text is HTML-escaped, so a URL in a citation stays text and fetches nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from pathlib import Path

from attnlab.report.data import ReportData
from attnlab.report.tables import (
    CODE_LABELS,
    NOTHING_HAND_TYPED,
    VERDICT_RULE,
    Table,
    claims_table,
    footnotes,
    header_lines,
    leaderboard_table,
    speed_table,
)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
tr.baseline td { background: #fff2e6; font-weight: 600; }
td.agrees { color: #1a7f37; font-weight: 600; } td.disagrees { color: #b42318; font-weight: 600; }
td.inconclusive { color: #8a6d00; }
code { background: #f4f4f4; padding: 0.1em 0.3em; border-radius: 3px; word-break: break-all; }
.wide { overflow-x: auto; } .note { color: #444; font-size: 0.9em; }
blockquote { border-left: 4px solid #ccc; margin: 1em 0; padding: 0.2em 1em; color: #444; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
"""

VERDICTS = ("agrees", "disagrees", "inconclusive")


def html_table(table: Table, row_classes: Sequence[str] = ()) -> str:
    header, body = table
    out = ['<div class="wide"><table>', "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(body):
        css = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        cells = "".join(
            f'<td class="{c}">{escape(c)}</td>' if c in VERDICTS else f"<td>{escape(c)}</td>" for c in row
        )
        out.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return "\n".join([*out, "</table></div>"])


def _text(text: str) -> str:
    """Escape, then show `code` spans (the only Markdown our texts use) as <code>."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def render_html(data: ReportData, plots: Sequence[Path] = ()) -> str:
    meta = data.meta
    title = str(meta.get("title") or meta.get("name") or "attnlab report")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<ul>",
    ]
    for label, value in header_lines(meta, len(data.records)):
        shown = f"<code>{escape(value)}</code>" if label in CODE_LABELS else escape(value)
        out.append(f"<li><b>{escape(label)}:</b> {shown}</li>")
    out += ["</ul>", f"<blockquote>{_text(NOTHING_HAND_TYPED)}</blockquote>", "<h2>Leaderboard</h2>"]
    classes = ["baseline" if row["baseline"] else "" for row in data.rows]
    out.append(html_table(leaderboard_table(data.grid, data.rows, data.baseline), classes))
    out += [f'<p class="note">{_text(note)}</p>' for note in footnotes(data.grid, data.rows)]
    if data.claims:
        out += ["<h2>Paper vs here</h2>", html_table(claims_table(data.claims))]
        out.append(f'<p class="note">{_text(VERDICT_RULE)}</p>')
    if plots:
        out.append("<h2>Plots</h2>")
        out += [f'<img alt="{escape(p.stem)}" src="{data_uri(p)}">' for p in plots]
    if data.speed:
        out += ["<h2>Speed and memory</h2>", html_table(speed_table(data.speed))]
    if data.notes:
        out += ["<h2>Notes</h2>", "<ul>", *(f"<li>{_text(n)}</li>" for n in data.notes), "</ul>"]
    return "\n".join([*out, "</body></html>"]) + "\n"
