"""THE trial body, for sweeps and grids alike: a trial is a list of planned runs (one per task for a sweep,
one grid cell for an ablation); each run is one training run and one tracked (W&B) run, and its `Record` is
stored in the trial's user attributes as soon as it finishes (`records`, a list), so a crash keeps what
finished. Knows Optuna; knows W&B only through the `Tracker` protocol the caller passes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
import torch

from attnlab.config import RunConfig
from attnlab.experiments.pruning import PruningCallback
from attnlab.record import Record
from attnlab.train.common import NonFiniteLossError

# Outcomes that end one trial as FAIL (reason recorded) while the study goes on.
TRIAL_FAILURES: tuple[type[Exception], ...] = (NonFiniteLossError, torch.OutOfMemoryError)
RECORDS_ATTR = "records"


class TrackedRun(Protocol):
    def callbacks(self) -> list[Any]: ...
    def summary(self, metrics: Mapping[str, Any]) -> None: ...
    def finish(self, exit_code: int = 0) -> None: ...


class Tracker(Protocol):
    """Starts one tracked run per training run (`attnlab.tracking.WandbTracker`; `NullTracker` in tests)."""

    def start(self, *, name: str, group: str, job_type: str, tags: Sequence[str],
              config: Mapping[str, Any]) -> TrackedRun: ...


class _NullRun:
    def callbacks(self) -> list[Any]:
        return []

    def summary(self, metrics: Mapping[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class NullTracker:
    def start(self, *, name: str, group: str, job_type: str, tags: Sequence[str],
              config: Mapping[str, Any]) -> TrackedRun:
        return _NullRun()


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig
    label: str  # the tracked run's name, e.g. "study#3" or "row/task/s0"
    tags: tuple[str, ...] = ()
    row: str | None = None  # grid cell's row
    params: Mapping[str, Any] = field(default_factory=dict)  # values the sampler chose


def run_trial(trial: optuna.Trial, runs: Sequence[PlannedRun], *, study: str, tracker: Tracker,
              prune_metric: str | None = None) -> list[Record]:
    """Train every planned run of `trial`; returns their records (also stored under `records`)."""
    from attnlab.config import to_dict
    from attnlab.train.runner import train_run

    records: list[Record] = []
    offset = 0  # pruning reports step counts that keep growing across a trial's tasks
    for run in runs:
        tracked = tracker.start(name=run.label, group=study, job_type=run.cfg.task.name, tags=run.tags,
                                config={**to_dict(run.cfg), "trial": trial.number, "row": run.row,
                                        "params": dict(run.params)})
        callbacks = list(tracked.callbacks())
        if prune_metric is not None:
            callbacks.append(PruningCallback(trial, prune_metric, offset))
        try:
            record = train_run(run.cfg, callbacks=callbacks, progress=False)
        except optuna.TrialPruned:
            tracked.summary({"state": "pruned"})
            tracked.finish()
            raise
        except TRIAL_FAILURES as e:
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}")
            trial.set_user_attr("failed_task", run.cfg.task.name)
            tracked.summary({"state": "failed", "fail_reason": str(e)[:500]})
            tracked.finish(exit_code=1)
            raise
        except BaseException:
            tracked.finish(exit_code=1)  # never leave a tracked run open on an unexpected error
            raise
        record = record.with_trial(study, trial.number, row=run.row, params=run.params)
        tracked.summary(record.summary())
        tracked.finish()
        records.append(record)
        trial.set_user_attr(RECORDS_ATTR, [r.to_dict() for r in records])  # task by task: a crash keeps these
        offset += run.cfg.train.max_steps
    return records


def mean_value(records: Sequence[Record], metric: str) -> float:
    return sum(r.value(metric) for r in records) / len(records)


def trial_tags(values: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f"{path.rsplit('.', 1)[-1]}={v}"[:64] for path, v in values.items())
