"""A sweep report's figures (matplotlib, Agg, PNG): objective history with the best so far, parameter
importance, the Pareto front of two objectives, and objective vs the most important parameters.

No timestamps in the PNGs (the same trials give byte-identical images); each PNG's Description says how to
regenerate it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from attnlab.report.plots import BASE_COLOR, DPI, FRONT_COLOR, ROW_COLOR
from attnlab.report.sweep_data import SweepData
from attnlab.report.sweep_tables import objective_header

TOP_PARAMS = 4
OTHER_COLOR = "#999999"


def _save(fig: Any, path: Path, data: SweepData) -> Path:
    regenerate = str(data.meta.get("regenerate") or "attnlab report <dir>/trials.jsonl")
    fig.savefig(path, dpi=DPI, bbox_inches="tight",
                metadata={"Software": None, "Description": f"attnlab sweep report; regenerate: {regenerate}"})
    plt.close(fig)
    return path


def _title(data: SweepData) -> str:
    return str(data.meta.get("title") or data.meta.get("name") or "")


def plot_history(data: SweepData, path: Path) -> Path:
    """Each objective vs trial number: complete trials as dots, the best so far as a step line, trials that
    did not complete as gray ticks along the bottom."""
    fig, axes = plt.subplots(len(data.metrics), 1, figsize=(8, 3.2 * len(data.metrics)), squeeze=False)
    done = sorted(data.ranked, key=lambda r: r.number)
    for i, (ax, metric, direction) in enumerate(zip(axes[:, 0], data.metrics, data.directions)):
        if not done:
            ax.text(0.5, 0.5, "no complete trial yet", ha="center", va="center", transform=ax.transAxes)
        else:
            xs = [r.number for r in done]
            ys = [(r.values or [])[i] for r in done]
            best = max if direction == "maximize" else min
            so_far: list[float] = []
            for y in ys:
                so_far.append(y if not so_far else best(so_far[-1], y))
            ax.plot(xs, ys, "o", color=ROW_COLOR, label="complete trial")
            ax.step(xs, so_far, where="post", color=BASE_COLOR, label="best so far")
        if data.others:
            ax.plot([r.number for r in data.others], [0] * len(data.others), "|", color=OTHER_COLOR, markersize=14,
                    transform=ax.get_xaxis_transform(), label="pruned / failed / running")
        ax.set_ylabel(objective_header(metric, direction), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("trial number", fontsize=10)
    axes[0, 0].set_title(_title(data), fontsize=11)
    return _save(fig, path, data)


def plot_importance(data: SweepData, path: Path) -> Path:
    """Horizontal bars, most important parameter on top, one bar per objective."""
    imp = data.importance.values
    params = list(imp)
    k = len(data.metrics)
    height = 0.8 / k
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(params) * max(1, k * 0.7) + 1.4))
    colors = [ROW_COLOR, BASE_COLOR, FRONT_COLOR, OTHER_COLOR]
    for j, metric in enumerate(data.metrics):
        ys = [y + (j - (k - 1) / 2) * height for y in range(len(params))]
        ws = [imp[p][j] or 0.0 for p in params]
        ax.barh(ys, ws, height=height, color=colors[j % len(colors)], label=metric)
        for y, w in zip(ys, ws):
            ax.annotate(f"{w:.2f}", (w, y), textcoords="offset points", xytext=(3, 0), va="center", fontsize=8)
    ax.set_yticks(range(len(params)))
    ax.set_yticklabels(params, fontsize=9)
    ax.set_ylim(len(params) - 0.5, -0.5)
    ax.set_xlabel("importance (PED-ANOVA, sums to 1 per objective)", fontsize=10)
    ax.set_xlim(0, 1.1)
    ax.grid(axis="x", alpha=0.3)
    if k > 1:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Parameter importance — {_title(data)}", fontsize=11)
    return _save(fig, path, data)


def plot_pareto(data: SweepData, path: Path) -> Path:
    """Two objectives: every complete trial, the Pareto front highlighted and joined."""
    (mx, my), (dx, dy) = data.metrics[:2], data.directions[:2]
    fig, ax = plt.subplots(figsize=(7, 5))
    front = data.pareto_numbers
    rest = [r for r in data.ranked if r.number not in front]
    ax.plot([(r.values or [])[0] for r in rest], [(r.values or [])[1] for r in rest], "o", color=OTHER_COLOR,
            label="dominated")
    points = sorted(((r.values or [])[0], (r.values or [])[1], r.number) for r in data.pareto)
    ax.plot([p[0] for p in points], [p[1] for p in points], "o--", color=BASE_COLOR, label="Pareto front")
    for x, y, number in points:
        ax.annotate(f"#{number}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(objective_header(mx, dx), fontsize=10)
    ax.set_ylabel(objective_header(my, dy), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"Pareto front — {_title(data)}", fontsize=11)
    return _save(fig, path, data)


def top_params(data: SweepData) -> list[str]:
    """The most important parameters (importance order), else the space's first ones."""
    ranked = list(data.importance.values) or [p for p in data.params if any(p in r.params for r in data.ranked)]
    return ranked[:TOP_PARAMS]


def plot_params(data: SweepData, path: Path) -> Path:
    """The first objective vs each top parameter, one panel each; the best trial in orange."""
    params = top_params(data)
    metric, direction = data.metrics[0], data.directions[0]
    fig, axes = plt.subplots(1, len(params), figsize=(3.6 * len(params), 3.6), squeeze=False, sharey=True)
    best = data.ranked[0].number if data.ranked else None
    for ax, p in zip(axes[0], params):
        rows = [r for r in data.ranked if p in r.params]
        dist = next((r.distributions[p] for r in rows if p in r.distributions), None)
        categorical = type(dist).__name__ == "CategoricalDistribution"
        if categorical:
            choices = [json.dumps(c) if not isinstance(c, str) else c for c in getattr(dist, "choices", ())]
            pos = {c: k for k, c in enumerate(choices)}
            xs: list[float] = [pos.get(r.params[p] if isinstance(r.params[p], str) else json.dumps(r.params[p]), -1) for r in rows]
            ax.set_xticks(range(len(choices)))
            ax.set_xticklabels(choices, rotation=30, ha="right", fontsize=8)
        else:
            xs = [float(r.params[p]) for r in rows]
            if getattr(dist, "log", False):
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # minor tick labels overlap on a short decade
        ys = [(r.values or [])[0] for r in rows]
        colors = [BASE_COLOR if r.number == best else ROW_COLOR for r in rows]
        ax.scatter(xs, ys, c=colors, s=28)
        ax.set_xlabel(p, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(objective_header(metric, direction), fontsize=10)
    fig.suptitle(f"{metric} vs the top parameters (orange: best trial)", fontsize=11)
    return _save(fig, path, data)


def sweep_plots(data: SweepData, out_dir: Path) -> list[Path]:
    plots = [plot_history(data, out_dir / "history.png")]
    if data.importance.values:
        plots.append(plot_importance(data, out_dir / "importance.png"))
    if len(data.metrics) == 2 and data.ranked:
        plots.append(plot_pareto(data, out_dir / "pareto.png"))
    if data.ranked and top_params(data):
        plots.append(plot_params(data, out_dir / "params.png"))
    return plots
