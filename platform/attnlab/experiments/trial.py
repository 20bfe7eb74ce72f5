"""THE trial body, for sweeps and grids alike: a trial is a list of planned runs (one per task for a sweep,
one grid cell for an ablation); each run is one training run and one tracked (W&B) run, and its `Record` is
stored in the trial's user attributes as soon as it finishes (`records`, a list), so a crash keeps what
finished. Knows Optuna; knows W&B only through the `Tracker` protocol the caller passes in.

Each tracked run has a stable id (`stable_run_id`: the study plus the grid cell, or the study plus the trial a
retry descends from, plus the task), so a killed-then-redone trial resumes its own W&B run.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
SALT_ATTR = "wandb_id_salt"


class TrackedRun(Protocol):
    @property
    def wants_checkpoint(self) -> bool: ...  # save a checkpoint for log_record
    def callbacks(self) -> list[Any]: ...
    def summary(self, metrics: Mapping[str, Any]) -> None: ...
    def log_record(self, record: Record, checkpoint: Path | None = None) -> None: ...
    def finish(self, exit_code: int = 0) -> None: ...


class Tracker(Protocol):
    """Starts one tracked run per training run (`attnlab.tracking.WandbTracker`; `NullTracker` in tests).
    `run_id` resumes the run of that id when it exists; `log_every_n_steps` is the run config's."""

    def start(self, *, name: str, group: str, job_type: str, tags: Sequence[str], config: Mapping[str, Any],
              run_id: str | None = None, log_every_n_steps: int | None = None) -> TrackedRun: ...


class _NullRun:
    wants_checkpoint = False

    def callbacks(self) -> list[Any]:
        return []

    def summary(self, metrics: Mapping[str, Any]) -> None:
        pass

    def log_record(self, record: Record, checkpoint: Path | None = None) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class NullTracker:
    def start(self, *, name: str, group: str, job_type: str, tags: Sequence[str], config: Mapping[str, Any],
              run_id: str | None = None, log_every_n_steps: int | None = None) -> TrackedRun:
        return _NullRun()


def stable_run_id(study: str, key: str, salt: str = "") -> str:
    """A W&B run id (16 hex digits) that is the same every time this study runs this key."""
    return hashlib.sha1(f"{study}\0{salt}\0{key}".encode()).hexdigest()[:16]


def study_salt(study: optuna.Study) -> str:
    """A random tag stored with the study when it first tracks a run: a study deleted and created again under the
    same name gets new W&B run ids instead of resuming (and mixing into) the old study's runs."""
    salt = study.user_attrs.get(SALT_ATTR)
    if not isinstance(salt, str):
        salt = uuid.uuid4().hex[:8]
        study.set_user_attr(SALT_ATTR, salt)  # two workers racing here: the last write wins for every later run
    return salt


def origin_trial(trial: optuna.Trial) -> int:
    """The trial a retry descends from (RetryFailedTrialCallback keeps the first failed one), else this one."""
    attrs = trial.storage.get_trial_system_attrs(trial._trial_id)  # a live Trial has no system_attrs of its own
    retried = attrs.get("failed_trial")  # RetryFailedTrialCallback.retried_trial_number reads the same key
    return trial.number if retried is None else int(retried)


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig
    label: str  # the tracked run's name, e.g. "study#3" or "row/task/s0"
    tags: tuple[str, ...] = ()
    row: str | None = None  # grid cell's row
    params: Mapping[str, Any] = field(default_factory=dict)  # values the sampler chose
    key: str | None = None  # what identifies this run in its study (a grid cell); default: origin trial + task

    def run_key(self, trial: optuna.Trial) -> str:
        return self.key or f"trial{origin_trial(trial)}/{self.cfg.task.name}"


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
                                        "params": dict(run.params)},
                                run_id=stable_run_id(study, run.run_key(trial), study_salt(trial.study)),
                                log_every_n_steps=run.cfg.train.log_every_n_steps)
        callbacks = list(tracked.callbacks())
        if prune_metric is not None:
            callbacks.append(PruningCallback(trial, prune_metric, offset))
        # A scratch checkpoint for the "model" artifact (W&B copies it); removed on error by its finalizer.
        scratch = tempfile.TemporaryDirectory(prefix="attnlab-ckpt-") if tracked.wants_checkpoint else None
        checkpoint = Path(scratch.name) / "model.ckpt" if scratch is not None else None
        resume_dir = resume_folder(study, run, trial)
        try:
            record = train_run(run.cfg, callbacks=callbacks, progress=False, checkpoint_path=checkpoint,
                               checkpoint_dir=resume_dir)
        except optuna.TrialPruned:
            drop_folder(resume_dir)
            tracked.summary({"state": "pruned"})
            tracked.finish()
            raise
        except TRIAL_FAILURES as e:
            drop_folder(resume_dir)  # an outcome: a retry would fail the same way
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}")
            trial.set_user_attr("failed_task", run.cfg.task.name)
            tracked.summary({"state": "failed", "fail_reason": str(e)[:500]})
            tracked.finish(exit_code=1)
            raise
        except BaseException:
            tracked.finish(exit_code=1)  # never leave a tracked run open on an unexpected error
            raise
        drop_folder(resume_dir)  # the record is what stays of a finished run
        record = record.with_trial(study, trial.number, row=run.row, params=run.params)
        tracked.summary(record.summary())
        tracked.log_record(record, checkpoint)
        tracked.finish()
        if scratch is not None:
            scratch.cleanup()
        records.append(record)
        trial.set_user_attr(RECORDS_ATTR, [r.to_dict() for r in records])  # task by task: a crash keeps these
        offset += run.cfg.train.max_steps
    return records


def resume_folder(study: str, run: PlannedRun, trial: optuna.Trial) -> Path | None:
    """Where a run with `train.checkpoint_every_n_steps` keeps its checkpoint: results/sweeps/<study>/ckpt/<id>,
    keyed by the logical trial (its retries share the key: `origin_trial`, or the grid cell) and by the config
    without its name (which carries the trial number), so a re-queued trial finds it and resumes."""
    import dataclasses

    from attnlab.config import config_hash
    from attnlab.paths import results_dir

    if run.cfg.train.checkpoint_every_n_steps <= 0:
        return None
    key = f"{stable_run_id(study, run.run_key(trial))}-{config_hash(dataclasses.replace(run.cfg, name=''))}"
    return results_dir() / "sweeps" / study / "ckpt" / key


def drop_folder(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def mean_value(records: Sequence[Record], metric: str) -> float:
    return sum(r.value(metric) for r in records) / len(records)


def trial_tags(values: Mapping[str, Any]) -> tuple[str, ...]:
    """Categorical tags only (`kind=linear`, `n_heads=4`): a float (`lr=0.00123`) is one unique tag per run, so it
    stays in the run's config."""
    return tuple(f"{path.rsplit('.', 1)[-1]}={v}"[:64] for path, v in values.items() if not isinstance(v, float))
