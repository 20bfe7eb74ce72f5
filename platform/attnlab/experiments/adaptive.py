"""Seeds added to a grid after it ran (`attnlab reproduce NAME --until-conclusive --max-seeds N`).

The grid study's GridSampler has a fixed search space, and Optuna refuses a categorical parameter whose
choices change, so added seeds live in a second study in the same storage, `<grid study>-added-seeds`: every
one of its trials is an enqueued cell {row, task, seed} (seed an integer parameter), run by the same trial
body. It is resumable like the grid: enqueueing skips cells already complete, queued or running in either
study, and a rerun of the command drains what is left. Which cells to add is decided above this layer
(`report/sequential.py`); this module only stores, queues and runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from attnlab.experiments.grid import completed_records
from attnlab.experiments.grid_config import Resolved
from attnlab.experiments.study import make_pruner
from attnlab.record import Record

SUFFIX = "added-seeds"
PLAN_ATTR = "sequential"
CELL_ATTR = "queued_cell"  # {row, task, seed} of an enqueued trial (optuna 5's Trial has no system_attrs)
Cell = tuple[str, str, int]  # (row, task, seed)


def extension_name(grid_study: str) -> str:
    return f"{grid_study}-{SUFFIX}"


def open_extension(storage: Any, grid_study: str) -> optuna.Study:
    """Create or load the added-seeds study (its sampler is never asked: every trial is enqueued)."""
    return optuna.create_study(study_name=extension_name(grid_study), storage=storage, direction="maximize",
                               sampler=optuna.samplers.RandomSampler(seed=0), pruner=make_pruner({"name": "none"}),
                               load_if_exists=True)


def load_extension(storage: Any, grid_study: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=extension_name(grid_study), storage=storage)
    except KeyError:
        return None


def added_seeds(r: Resolved, max_seeds: int) -> list[int]:
    """The seeds after the grid's own: max(seeds) + 1, + 2, … up to max_seeds seeds in all, fixed in advance
    so that every rerun adds the same ones."""
    start = max(int(s) for s in r.seeds) + 1
    return list(range(start, start + max(0, max_seeds - len(r.seeds))))


def save_plan(study: optuna.Study, plan: dict[str, Any]) -> None:
    study.set_user_attr(PLAN_ATTR, plan)


def load_plan(study: optuna.Study) -> dict[str, Any] | None:
    plan = study.user_attrs.get(PLAN_ATTR)
    return dict(plan) if plan else None


def cell_of(params: dict[str, Any]) -> Cell | None:
    try:
        return str(params["row"]), str(params["task"]), int(params["seed"])
    except (KeyError, TypeError, ValueError):
        return None


def covered(studies: Sequence[optuna.Study]) -> set[Cell]:
    """Cells complete, running or queued in any of the studies."""
    out: set[Cell] = set()
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING,
                                                         TrialState.WAITING)):
            cell = cell_of(t.user_attrs.get(CELL_ATTR) or t.params)
            if cell is not None:
                out.add(cell)
    return out


def enqueue_cells(ext: optuna.Study, cells: Iterable[Cell], grid: optuna.Study) -> list[Cell]:
    """Queue the cells not yet complete, running or queued in the grid or the extension; returns those queued."""
    have = covered([grid, ext])
    queued = []
    for row, task, seed in sorted(set(cells)):
        if (row, task, seed) not in have:
            params = {"row": row, "task": task, "seed": int(seed)}
            ext.enqueue_trial(params, user_attrs={CELL_ATTR: params})
            queued.append((row, task, seed))
    return queued


def queued_only(objective: Any) -> Any:
    """Run only enqueued cells: a trial the sampler made up (another worker took the queued one first) is
    pruned at once instead of training a random cell."""

    def wrapped(trial: optuna.Trial) -> Any:
        if CELL_ATTR not in trial.user_attrs:
            raise optuna.TrialPruned("added-seeds studies run enqueued cells only")
        return objective(trial)

    return wrapped


def all_records(grid: optuna.Study, ext: optuna.Study | None) -> list[Record]:
    """The grid's records, then the added seeds' (one per cell; a cell the grid has is never taken twice)."""
    records = completed_records(grid)
    have = {(r.row, r.task, r.seed) for r in records}
    extra = [r for r in completed_records(ext)] if ext is not None else []
    return records + [r for r in extra if (r.row, r.task, r.seed) not in have]
