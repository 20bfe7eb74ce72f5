"""An ablation (grid) study's report: its meta block (what ran, by which command, at which commit) and the
files, built from the study's typed records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attnlab
from attnlab.experiments.grid_config import AblationConfig, Resolved
from attnlab.paths import shown
from attnlab.record import Record
from attnlab.report.build import build_report
from attnlab.report.leaderboard import leaderboard_rows
from attnlab.train.fit import git_commit


def ablation_meta(abl: AblationConfig, r: Resolved, command: str, out: Path) -> dict[str, Any]:
    return {
        "kind": "ablation", "name": abl.name, "title": abl.title, "paper": abl.paper, "preset": r.preset,
        "command": command, "attnlab_version": attnlab.__version__, "git_commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "baseline": abl.baseline,
        "rows": [row.name for row in r.rows], "tasks": list(r.tasks), "seeds": list(r.seeds),
        "claims": list(abl.claims), "paper_numbers": dict(abl.paper_numbers), "notes": list(abl.notes),
        "pretrain": None if r.pretrain is None else {"task": r.pretrain.task, "objective": r.pretrain.objective,
                                                     "set": r.pretrain.set},
        "regenerate": f"attnlab report {shown(out / 'records.jsonl')}",
    }


def write_ablation_report(meta: dict[str, Any], records: Sequence[Record], out_dir: Path,
                          speed: list[dict[str, Any]] | None) -> tuple[list[Path], list[dict[str, Any]]]:
    """Tables, plots, HTML, exported records → (paths, leaderboard rows for a tracker's table)."""
    plain = [r.to_dict() for r in records]
    return build_report(meta, plain, out_dir, speed=speed), leaderboard_rows(meta, plain)
