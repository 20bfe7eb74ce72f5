"""`build_report`: every file of one ablation's report, from (meta, records, speed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attnlab.record import Record
from attnlab.report.curves import plot_curves, plot_pretrain_curves, pretrain_records
from attnlab.report.data import compute
from attnlab.report.export import export_inputs
from attnlab.report.html import render_html
from attnlab.report.leaderboard import write_csv
from attnlab.report.markdown import render_markdown
from attnlab.report.plots import plot_cost, plot_scores, plot_speed
from attnlab.report.verdict_tables import write_claims_csv


def build_report(
    meta: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    out_dir: Path | str,
    speed: Sequence[Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write leaderboard.csv/.md, scores.png, cost.png (speed.png with `speed`), report.html,
    records.jsonl, meta.json (speed.json); return their paths. `load_exported(out_dir)` gives the
    inputs back, so the same report can be rebuilt without rerunning anything."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # every record through the one reader: validated, and schema-1 records come back in the current schema
    records = [Record.from_dict(r, f"record {i}").to_dict() for i, r in enumerate(records)]
    # Pretraining curves travel in meta.json: the pretraining checkpoints (results/<name>/pretrain/) are not
    # committed, and a report rebuilt elsewhere from its export must show the same curves.
    found = [{k: r.get(k) for k in ("name", "task", "config_hash", "curves")} for r in pretrain_records(out_dir)
             if r.get("curves")]
    if found:
        meta = {**meta, "pretrain_curves": found}
    data = compute(meta, records, speed)
    plots = [plot_scores(data, out_dir / "scores.png"), plot_cost(data, out_dir / "cost.png")]
    if speed:
        plots.append(plot_speed(speed, out_dir / "speed.png"))
    curves = [plot_curves(data.grid, out_dir / "curves.png", str(meta.get("title") or "")),
              plot_pretrain_curves(list(meta.get("pretrain_curves") or []), out_dir / "pretrain_curves.png")]
    plots += [p for p in curves if p is not None]
    csv_path = write_csv(data.rows, data.grid.tasks, out_dir / "leaderboard.csv")
    claims_csv = [write_claims_csv(data.claims, out_dir / "claims.csv")] if data.claims else []
    md_path = out_dir / "leaderboard.md"
    md_path.write_text(render_markdown(data, [p.name for p in plots]), encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(data, plots), encoding="utf-8")
    return [csv_path, *claims_csv, md_path, *plots, html_path, *export_inputs(meta, records, out_dir, speed)]
