"""A sweep study's report, like an ablation's: `results/<study>/` with leaderboard.md/.csv, the Pareto front
(multi-objective), per-parameter importance, plots, a self-contained report.html, and the exported inputs
(trials.jsonl + meta.json) so `attnlab report <dir>/trials.jsonl` rebuilds it without the storage.

    meta = sweep_meta(sweep, command, out)          # what ran, by which command, at which commit
    build_sweep_report(meta, study_trials(study), out)
    meta, rows = load_sweep_export(out)             # … and later, anywhere
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attnlab
from attnlab.experiments.results import TrialRow, read_trials_jsonl, study_trials, write_trials_jsonl
from attnlab.experiments.space import Param
from attnlab.experiments.sweep_config import SweepConfig
from attnlab.paths import shown
from attnlab.report.html import render_page
from attnlab.report.markdown import markdown_table
from attnlab.report.sweep_data import SweepData, compute_sweep
from attnlab.report.sweep_plots import sweep_plots
from attnlab.report.sweep_tables import (
    CODE_LABELS,
    NOTHING_HAND_TYPED,
    header_lines,
    importance_md_table,
    importance_notes,
    leaderboard_md_table,
    leaderboard_notes,
    others_md_table,
    pareto_md_table,
    raw_table,
    space_md_table,
)

TRIALS, META = "trials.jsonl", "meta.json"
PLOT_NAMES = ("history.png", "importance.png", "pareto.png", "params.png")


def _space_entry(p: Param) -> dict[str, Any]:
    """A search-space parameter as plain JSON (what meta.json stores and the report's space table shows)."""
    entry: dict[str, Any] = {"path": p.path, "type": p.type}
    if p.type == "categorical":
        entry["choices"] = list(p.choices)
    else:
        entry.update(low=p.low, high=p.high, step=p.step, log=p.log)
    entry["when"] = {k: list(v) for k, v in p.when.items()}
    return entry


def sweep_meta(sweep: SweepConfig, command: str, out: Path) -> dict[str, Any]:
    from attnlab.train.fit import git_commit

    description = str(getattr(sweep, "description", "") or "")  # SweepConfig may not carry it yet
    return {
        "kind": "sweep", "name": sweep.name, "title": f"Sweep: {sweep.name}", "description": description,
        "sweep_file": str(sweep.path), "command": command,
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in sweep.objectives],
        "tasks": list(sweep.tasks), "set": dict(sweep.fixed), "sampler": dict(sweep.sampler),
        "pruner": dict(sweep.pruner), "n_trials": sweep.n_trials,
        "space": [_space_entry(p) for p in sweep.params],
        "attnlab_version": attnlab.__version__, "git_commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "regenerate": f"attnlab report {shown(out / TRIALS)}",
    }


def leaderboard_table(meta: Mapping[str, Any], rows: Sequence[TrialRow]) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of every trial, best first: numbers at full precision, None where undefined, one type
    per column, so it can be logged as `wandb.Table(columns=..., data=...)`."""
    return raw_table(compute_sweep(meta, rows, importance=False))


# ---- rendering: one list of blocks → Markdown and HTML ----------------------------------------
Block = tuple[str, Any]


def report_blocks(data: SweepData, plots: Sequence[Path]) -> list[Block]:
    blocks: list[Block] = [("kv", header_lines(data)), ("quote", NOTHING_HAND_TYPED), ("h2", "Leaderboard")]
    if data.ranked:
        blocks += [("table", leaderboard_md_table(data)), ("notes", leaderboard_notes(data))]
    else:
        blocks.append(("notes", ["No trial has completed yet."]))
    if data.multi:
        blocks += [("h2", "Pareto front")]
        blocks += [("table", pareto_md_table(data))] if data.pareto else [("notes", ["No complete trial yet."])]
    blocks.append(("h2", "Parameter importance"))
    if data.importance.values:
        blocks.append(("table", importance_md_table(data)))
    blocks.append(("notes", importance_notes(data)))
    if plots:
        blocks += [("h2", "Plots"), ("plots", list(plots))]
    if data.others:
        blocks += [("h2", "Trials that did not complete"), ("table", others_md_table(data))]
    if data.meta.get("space"):
        blocks += [("h2", "Search space"), ("table", space_md_table(data.meta))]
    return blocks


def _title(meta: Mapping[str, Any]) -> str:
    return str(meta.get("title") or meta.get("name") or "attnlab sweep report")


def render_markdown(data: SweepData, blocks: Sequence[Block]) -> str:
    out = [f"# {_title(data.meta)}", ""]
    for kind, value in blocks:
        if kind == "kv":
            out += [f"- {k}: `{v}`" if k in CODE_LABELS else f"- {k}: {v}" for k, v in value] + [""]
        elif kind == "quote":
            out += [f"> {value}", ""]
        elif kind == "h2":
            out += [f"## {value}", ""]
        elif kind == "table":
            out += [markdown_table(value), ""]
        elif kind == "notes":
            out += [f"- {n}" for n in value] + [""]
        elif kind == "plots":
            out += [f"![{p.name}]({p.name})" for p in value] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_html(data: SweepData, blocks: Sequence[Block]) -> str:
    return render_page(_title(data.meta), blocks)


def write_csv(data: SweepData, path: Path) -> Path:
    columns, body = raw_table(data)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in line] for line in body])
    return path


def build_sweep_report(meta: Mapping[str, Any], rows: Sequence[TrialRow], out_dir: Path | str) -> list[Path]:
    """Write leaderboard.md/.csv, the plots, report.html, trials.jsonl and meta.json; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = compute_sweep(meta, rows)
    for name in PLOT_NAMES:  # a plot this build does not draw must not linger from an older one
        (out / name).unlink(missing_ok=True)
    plots = sweep_plots(data, out)
    blocks = report_blocks(data, plots)
    md, html = out / "leaderboard.md", out / "report.html"
    md.write_text(render_markdown(data, blocks), encoding="utf-8")
    html.write_text(render_html(data, blocks), encoding="utf-8")
    trials = write_trials_jsonl(rows, out / TRIALS)
    meta_path = out / META
    meta_path.write_text(json.dumps(dict(meta), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return [write_csv(data, out / "leaderboard.csv"), md, *plots, html, trials, meta_path]


def is_sweep_export(path: Path | str) -> bool:
    """True for a sweep report folder or its trials.jsonl (an ablation export has records.jsonl instead)."""
    p = Path(path)
    return (p / TRIALS).is_file() if p.is_dir() else p.name == TRIALS and p.is_file()


def load_sweep_export(path: Path | str) -> tuple[dict[str, Any], list[TrialRow]]:
    """(meta, rows) from an exported sweep report folder or its trials.jsonl (meta.json beside it)."""
    p = Path(path)
    trials = p / TRIALS if p.is_dir() else p
    folder = trials.parent
    if not trials.is_file():
        hint = " (it holds records.jsonl: an ablation report, read it with load_exported)" if (
            folder / "records.jsonl").is_file() else ""
        raise FileNotFoundError(f"{trials} not found: pass a sweep report folder or its {TRIALS}{hint}")
    if not (folder / META).is_file():
        raise FileNotFoundError(f"{folder / META} not found: it must sit next to {trials.name}")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{folder / META}: not JSON ({e.msg})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "sweep":
        kind = meta.get("kind") if isinstance(meta, dict) else None
        raise ValueError(f"{folder / META}: kind is {kind!r}, not 'sweep': this is not a sweep report")
    if not meta.get("objectives"):
        raise ValueError(f"{folder / META}: no objectives: expected [{{metric, direction}}, ...]")
    return meta, read_trials_jsonl(trials)


def report_sweep_study(sweep: SweepConfig, study: Any, out_dir: Path | str, command: str) -> list[Path]:
    """The whole report of a sweep from its Optuna study (`load_or_create(sweep)`)."""
    out = Path(out_dir)
    return build_sweep_report(sweep_meta(sweep, command, out), study_trials(study), out)
