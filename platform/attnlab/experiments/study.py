"""Create/resume a study from a sweep file, run trials in this process, or fan out K workers.

The storage is the experiment database: every trial's full record lives in its user attributes.
Crash safety: trials heartbeat into the storage; a trial whose worker died (SIGKILL, power loss)
goes stale, is marked FAIL and re-queued with the same parameters (RetryFailedTrialCallback).
`n_trials` counts *finished* trials (complete, pruned, or failed for a recorded reason), so
rerunning the same command continues to the requested count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.trial import TrialState

from attnlab.experiments.sweep_config import SweepConfig
from attnlab.paths import check_name, results_dir

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def default_storage(name: str, create_dir: bool = True) -> str:
    """sqlite:///<root>/results/sweeps/<name>.db (the name is checked: it cannot point outside that folder)."""
    folder = results_dir() / "sweeps"
    if create_dir:
        folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / (check_name(name, 'study name') + '.db')}"


def normalize_url(url: str) -> str:
    """`postgresql://…` → the driver that is installed (SQLAlchemy 2.1 defaults to psycopg 3; the
    `postgres` extra ships psycopg2-binary)."""
    import importlib.util

    if url.startswith(("postgresql://", "postgres://")) and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is None:
            raise RuntimeError("PostgreSQL storage needs a driver: pip install 'attnlab[postgres]' (psycopg2-binary)")
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def open_storage(url: str, heartbeat_interval_s: int = 10, grace_s: int = 60) -> RDBStorage:
    """RDB storage with heartbeats: a dead worker's trial goes stale and is re-queued (3 retries)."""
    url = normalize_url(url)
    engine = {"pool_pre_ping": True} if not url.startswith("sqlite") else None
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
        return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_interval_s, grace_period=grace_s,
                          heartbeat_stale_trial_callback=retry)
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_interval_s, grace_period=grace_s,
                      failed_trial_callback=RetryFailedTrialCallback(max_retry=3))


def make_sampler(cfg: dict[str, Any], grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    seed = cfg.get("seed")
    name = cfg.get("name", "tpe")
    if name == "grid":
        assert grid is not None
        return optuna.samplers.GridSampler(grid, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def make_pruner(cfg: dict[str, Any]) -> optuna.pruners.BasePruner:
    name = cfg.get("name", "none")
    opts = {k: v for k, v in cfg.items() if k != "name"}
    if name == "median":
        return optuna.pruners.MedianPruner(**opts)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**opts)
    return optuna.pruners.NopPruner()


def load_or_create(sweep: SweepConfig, storage_url: str | None = None) -> optuna.Study:
    from attnlab.experiments.space import grid_values

    url = storage_url or sweep.storage or default_storage(sweep.name)
    grid = grid_values(list(sweep.params)) if sweep.sampler.get("name") == "grid" else None
    storage = open_storage(url, sweep.heartbeat_interval_s, sweep.heartbeat_grace_s)
    study = optuna.create_study(study_name=sweep.name, storage=storage, directions=sweep.directions,  # type: ignore[arg-type]
                                sampler=make_sampler(sweep.sampler, grid), pruner=make_pruner(sweep.pruner),
                                load_if_exists=True)
    study.set_user_attr("sweep_file", str(sweep.path))
    study.set_user_attr("objectives", [o.metric for o in sweep.objectives])
    return study


def finished_count(study: optuna.Study) -> int:
    """Trials that reached an outcome: complete, pruned, or failed for a recorded reason (NaN, OOM).
    Heartbeat failures (dead worker) are not outcomes: their retry will be."""
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in FINISHED for t in trials)
    return done + sum(t.state == TrialState.FAIL and "fail_reason" in t.user_attrs for t in trials)


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One line per finished trial: number, state, objective value(s), params."""
    values = ", ".join(f"{v:.4g}" for v in trial.values) if trial.values else "—"
    params = " ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                      for k, v in trial.params.items())
    reason = trial.user_attrs.get("fail_reason")
    tail = f"  ({reason})" if reason and trial.state == TrialState.FAIL else ""
    return f"[{study.study_name}] trial {trial.number:>3} {trial.state.name:<8} objective {values}  {params}{tail}"


def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    print(trial_line(study, trial), flush=True)


def run_worker(study: optuna.Study, objective: Any, n_trials: int, catch: tuple[type[Exception], ...],
               verbose: bool = True) -> int:
    """Run trials here until the study has `n_trials` finished trials; returns how many this worker ran."""
    ran = 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while finished_count(study) < n_trials:
        if study.sampler.__class__.__name__ == "GridSampler" and _grid_exhausted(study):
            break
        study.optimize(objective, n_trials=1, catch=catch, gc_after_trial=True,
                       callbacks=[print_trial] if verbose else None)
        ran += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return ran


def _grid_exhausted(study: optuna.Study) -> bool:
    sampler = study.sampler
    return bool(getattr(sampler, "is_exhausted", lambda s: False)(study)) and not any(
        t.state in (TrialState.WAITING,) for t in study.get_trials(deepcopy=False))


def spawn_workers(argv: list[str], workers: int) -> int:
    """Run `workers` copies of this command (each with --workers 1) and wait; a dead worker is
    reported, never silently ignored, and the others carry on."""
    env = dict(os.environ, ATTNLAB_WORKER="1")
    procs = []
    for i in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "attnlab.cli", *argv, "--workers", "1"], env=env))
        time.sleep(0.5 if i == 0 else 0.0)  # first worker creates the study and its tables
    codes = [p.wait() for p in procs]
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    for i, c in bad:
        print(f"attnlab sweep: worker {i} exited with code {c}; its finished trials are kept, its running "
              "trial is retried by the heartbeat check. Rerun the same command to continue.", file=sys.stderr)
    return 1 if bad else 0
