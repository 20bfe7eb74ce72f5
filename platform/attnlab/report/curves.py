"""Learning curves from the records' `curves`: per task (columns) the validation score (perplexity for LM
corpora) and the training loss against the step, one line per row, the mean over its seeds at each step;
and the pretraining stage's curves when its record.json sits under `<report>/pretrain/<hash>/`."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from attnlab.report.grid import Grid, is_lm
from attnlab.report.plots import _save

PANELS = (("val", "validation score (%)", "validation perplexity"), ("train/loss", "training loss", "training loss"))


def mean_curve(records: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, mean over the records that have a point at that step), sorted by step."""
    by_step: dict[float, list[float]] = defaultdict(list)
    for record in records:
        for step, value in (record.get("curves") or {}).get(key, []):
            by_step[float(step)].append(float(value))
    return [(step, sum(v) / len(v)) for step, v in sorted(by_step.items())]


def has_curves(records: Sequence[Mapping[str, Any]]) -> bool:
    return any(record.get("curves") for record in records)


def plot_curves(grid: Grid, path: Path, title: str = "") -> Path | None:
    """One column per task, two panels (validation metric, training loss); None when no record has curves."""
    all_records = [rec for by_task in grid.cells.values() for rec in by_task.values()]
    if not has_curves(all_records):
        return None
    fig, axes = plt.subplots(2, len(grid.tasks), figsize=(4.6 * len(grid.tasks), 7), squeeze=False,
                             constrained_layout=True)
    for col, task in enumerate(grid.tasks):
        for panel, (key, label, lm_label) in enumerate(PANELS):
            ax = axes[panel][col]
            metric = ("val/perplexity" if is_lm(task) else "val/score") if key == "val" else key
            for row in grid.rows:
                records = [by_task[task] for (r, _), by_task in grid.cells.items() if r == row and task in by_task]
                points = mean_curve(records, metric)
                if points:
                    ax.plot(*zip(*points), marker="." if len(points) < 30 else None, label=row)
            ax.set_title(f"{task}: {lm_label if is_lm(task) else label}", fontsize=10)
            ax.set_xlabel("step", fontsize=9)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle((title + " — " if title else "") + "learning curves (mean over seeds)", fontsize=11)
    return _save(fig, path)


def pretrain_records(out_dir: Path) -> list[dict[str, Any]]:
    """The pretraining stages' records (`experiments/grid.py` ensure_pretrained writes them)."""
    out = []
    for path in sorted((out_dir / "pretrain").glob("*/record.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return out


def plot_pretrain_curves(stages: list[dict[str, Any]], path: Path) -> Path | None:
    """One line per pretraining stage (name, task, config_hash, curves), as kept in the report's meta."""
    records = [r for r in stages if r.get("curves")]
    if not records:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False, constrained_layout=True)
    for record in records:
        label = f"{record.get('name', 'pretrain')} ({record.get('task', '')}, {record.get('config_hash', '')[:8]})"
        for ax, key in zip(axes[0], ("train/loss", "val/perplexity")):
            points = (record.get("curves") or {}).get(key, [])
            if points:
                ax.plot(*zip(*points), marker="." if len(points) < 30 else None, label=label)
    for ax, title in zip(axes[0], ("pretraining loss", "pretraining validation perplexity")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)
