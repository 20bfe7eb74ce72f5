"""The report's figures (matplotlib, Agg backend, PNG): scores, cost vs score, speed vs length."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from attnlab.report.data import ReportData
from attnlab.report.grid import primary_metric
from attnlab.report.stats import pareto_front
from attnlab.report.tables import count

DPI = 120
BASE_COLOR, ROW_COLOR, FRONT_COLOR = "#d95f02", "#1b6ca8", "#555555"
# No timestamps or version strings in the PNGs: the same records give byte-identical images.
PNG_METADATA = {"Software": None}


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)
    return path


def _score_label(data: ReportData) -> str:
    metric = primary_metric(data.grid.tasks)
    return "overall score (mean of task scores, %)" if metric.key == "score" else metric.label


def plot_scores(data: ReportData, path: Path) -> Path:
    """Forest plot: primary score per row ± std over seeds; the baseline in orange with a guide line."""
    rows = data.rows
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
    for y, row in enumerate(rows):
        mean, std = row["overall"]["mean"], row["overall"]["std"]
        color = BASE_COLOR if row["baseline"] else ROW_COLOR
        if mean is None:
            ax.annotate(
                "no complete seed", (0.02, y), xycoords=("axes fraction", "data"), va="center", color="gray"
            )
            continue
        ax.errorbar(mean, y, xerr=std or 0.0, fmt="o", color=color, capsize=4, markersize=7)
        n, planned = row["overall"]["n"], len(data.grid.seeds)
        label = (
            f"{mean:.2f}"
            + (f" ± {std:.2f}" if std is not None else "")
            + (f" (n={n})" if n != planned else "")
        )
        ax.annotate(label, (mean, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=9)
        if row["baseline"]:
            ax.axvline(mean, color=BASE_COLOR, linestyle=":", alpha=0.7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["row"] + (" (baseline)" if r["baseline"] else "") for r in rows], fontsize=10)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first row on top, as in the table; room for the labels
    ax.set_xlabel(_score_label(data) + "; error bar: std over seeds", fontsize=10)
    ax.set_title(str(data.meta.get("title") or data.meta.get("name") or ""), fontsize=11)
    ax.margins(x=0.08)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _cost_panel(ax: Axes, data: ReportData, key: str, label: str, x_lower_is_better: bool) -> None:
    higher = primary_metric(data.grid.tasks).higher_is_better
    points = [r for r in data.rows if r[key] is not None and r["overall"]["mean"] is not None]
    if not points:
        ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=ax.transAxes)
        return
    xs = [float(r[key]) for r in points]
    ys = [float(r["overall"]["mean"]) for r in points]
    for x, y, row in zip(xs, ys, points):
        color = BASE_COLOR if row["baseline"] else ROW_COLOR
        ax.errorbar(x, y, yerr=row["overall"]["std"] or 0.0, fmt="o", color=color, capsize=3)
        ax.annotate(row["row"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = pareto_front(xs, ys, x_lower_is_better, higher)
    # Step line: the best score reachable within each budget (left-continuous when more x is better).
    ax.step(
        [xs[i] for i in front],
        [ys[i] for i in front],
        where="post" if x_lower_is_better else "pre",
        color=FRONT_COLOR,
        linestyle="--",
        label="Pareto front",
    )
    if max(xs) > 3 * min(xs) > 0:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: count(v)))
    ax.set_xlabel(label, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_cost(data: ReportData, path: Path) -> Path:
    """Score vs parameters (fewer is better) and vs training tokens/s (more is better)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    _cost_panel(left, data, "params", "parameters", x_lower_is_better=True)
    _cost_panel(right, data, "train_tokens_per_s", "training tokens/s", x_lower_is_better=False)
    left.set_ylabel(_score_label(data), fontsize=10)
    fig.suptitle("Score vs cost (orange: baseline; error bar: std over seeds)", fontsize=11)
    return _save(fig, path)


SPEED_PANELS = (
    ("fwd_bwd_ms", "forward + backward (ms)"),
    ("peak_mem_mb", "peak memory (MiB)"),
    ("decode_ms_per_token", "decoding (ms / token)"),
)


def plot_speed(speed: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One log-log panel per measurement vs sequence length, one line per variant."""
    panels = [(k, lab) for k, lab in SPEED_PANELS if any(s.get(k) is not None for s in speed)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    variants = list(dict.fromkeys(str(s["variant"]) for s in speed))
    for ax, (key, label) in zip(axes[0], panels):
        for variant in variants:
            points = sorted(
                (int(s["seq_len"]), float(s[key]))
                for s in speed
                if str(s["variant"]) == variant and s.get(key) is not None
            )
            if points:
                ax.plot(*zip(*points), marker="o", label=variant)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length (tokens)", fontsize=10)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=9)
    return _save(fig, path)
