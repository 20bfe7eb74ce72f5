"""Reference rows for a classification leaderboard, from the dev labels stored with the predictions:

- majority class: every dev example predicted as the split's most frequent label (ties: the lower class id);
- chance: uniformly random predictions over the K classes, scored on the *expected* confusion matrix (label
  counts × 1/K in every predicted column): accuracy 1/K and MCC 0 exactly; binary F1 2·n₁ / (N + 2·n₁), the
  F1 of the expected counts (within a fraction of a point of the expected F1 at dev-set sizes).
Both go through the same confusion-matrix scorer as the bootstrap, so they are in the task's official score
(`val/score`, percent; MNLI averages matched and mismatched).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attnlab.predictions import Predictions, decode
from attnlab.report.grid import Grid, overall_tasks
from attnlab.report.inference import example_scorable, task_score_from_counts

REFERENCE_ROWS = ("majority class", "chance")


def dev_labels(grid: Grid, task: str) -> Predictions | None:
    """The predictions (hence dev labels) of the first record of `task` that has them."""
    for by_task in grid.cells.values():
        p = decode(by_task.get(task, {}).get("predictions"))
        if p is not None:
            return p
    return None


def reference_scores(p: Predictions, task: str) -> dict[str, float]:
    k = p.num_classes
    majority, chance = [], []
    for split in p.splits():
        labels = p.labels[split]
        counts = np.bincount(labels, minlength=k).astype(np.float64)  # (K,)
        top = int(np.argmax(counts))
        confusion = np.zeros((k, k))
        confusion[:, top] = counts  # every example predicted `top`
        majority.append(confusion.reshape(-1))
        chance.append(np.repeat(counts / k, k))  # row-major (label, predicted): counts[label] / K each
    return {"majority class": float(task_score_from_counts(task, majority, k)),
            "chance": float(task_score_from_counts(task, chance, k))}


def reference_rows(grid: Grid) -> list[dict[str, Any]]:
    """[{row, tasks: {task: score or None}, overall: score or None}] for majority class and chance; empty when
    no classification task has stored predictions."""
    per_task = {t: reference_scores(p, t) for t in grid.tasks if example_scorable(t)
                for p in [dev_labels(grid, t)] if p is not None}
    if not per_task:
        return []
    counted = overall_tasks(grid.tasks)
    rows = []
    for name in REFERENCE_ROWS:
        tasks = {t: per_task[t][name] if t in per_task else None for t in grid.tasks}
        values = [tasks.get(t) for t in counted]
        overall = sum(v for v in values if v is not None) / len(values) if values and None not in values else None
        rows.append({"row": name, "tasks": tasks, "overall": overall})
    return rows
