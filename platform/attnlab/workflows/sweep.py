"""`attnlab sweep`: run a sweep study (here, in K workers or through a launcher), then its leaderboard."""


from __future__ import annotations

import os
import sys
from pathlib import Path

import optuna

from attnlab.experiments.launch import LaunchOptions, start_workers
from attnlab.experiments.launch import check_storage as check_launch_storage
from attnlab.experiments.recovery import requeue_interrupted
from attnlab.experiments.storage import DEFAULT_RETRY_S
from attnlab.experiments.study import (
    EXIT_STORAGE,
    default_storage,
    load_or_create,
    note_command,
    producing_commands,
    run_worker,
)
from attnlab.experiments.sweep_config import SweepConfig, load_sweep
from attnlab.experiments.trial import TRIAL_FAILURES
from attnlab.paths import results_dir
from attnlab.report.provenance import command_meta
from attnlab.tracking import WandbTracker
from attnlab.workflows.studies import (
    storage_down,
    storage_url,
)
from attnlab.workflows.wandb_glue import best_sweep_trial, log_leaderboard, study_salt, tracker_for


def sweep(path: str, *, n_trials: int | None, storage: str | None, workers: int, wandb: str,
          wandb_project: str | None, out: str | None, report: bool, command: str,
          wandb_checkpoints: bool = False, storage_retry_s: float = DEFAULT_RETRY_S,
          launch: LaunchOptions | None = None) -> int:
    launch = launch or LaunchOptions()
    cfg = load_sweep(path)
    n = n_trials or cfg.n_trials
    url = storage_url(storage, cfg.storage, lambda: default_storage(cfg.name))
    check_launch_storage(launch.launcher, url)  # before anything is created in a storage SLURM cannot share
    tracker = tracker_for(wandb, wandb_project, cfg.wandb, checkpoints=wandb_checkpoints)
    if (workers > 1 or launch.launcher != "processes") and not os.environ.get("ATTNLAB_WORKER"):
        argv = ["sweep", path, "--n-trials", str(n), "--storage-retry-s", str(storage_retry_s), "--wandb", wandb,
                "--no-report"]
        if wandb_project:
            argv += ["--wandb-project", wandb_project]
        if wandb_checkpoints:
            argv.append("--wandb-checkpoints")
        # the parent creates the study and re-queues trials an earlier run left interrupted
        requeue_interrupted(load_or_create(cfg, url, storage_retry_s))
        code = start_workers(argv, workers, storage=url, folder=results_dir() / "sweeps" / cfg.name / "jobs",
                             options=launch, job_name=cfg.name)
        if code == EXIT_STORAGE:
            raise storage_down(url)
    else:
        from attnlab.experiments.sweep import make_objective

        study = load_or_create(cfg, url, storage_retry_s)
        if not os.environ.get("ATTNLAB_WORKER"):
            requeue_interrupted(study)
        run_worker(study, make_objective(cfg, tracker, study.study_name), n, TRIAL_FAILURES)
        code = 0
    study = load_or_create(cfg, url, storage_retry_s)
    if not os.environ.get("ATTNLAB_WORKER"):
        note_command(study, command)  # the report header's "produced by", even when rebuilt later
    if not report:
        return code
    from attnlab.experiments.status import format_status

    print(format_status(study))
    return write_sweep_report(cfg, study, Path(out) if out else results_dir() / cfg.name, tracker, command) or code


def write_sweep_report(cfg: SweepConfig, study: optuna.Study, out_dir: Path, tracker: WandbTracker | None,
                       command: str) -> int:
    from attnlab.experiments.results import study_trials
    from attnlab.report.sweep import build_sweep_report, leaderboard_table, sweep_meta

    rows = study_trials(study)
    if not any(r.state == "COMPLETE" for r in rows):
        print("no complete trial yet: no leaderboard written", file=sys.stderr)
        return 1
    meta = {**sweep_meta(cfg, command, out_dir), **command_meta(producing_commands(study), command)}
    paths = build_sweep_report(meta, rows, out_dir)
    if tracker is not None:
        columns, table = leaderboard_table(meta, rows)
        log_leaderboard(tracker, study.study_name, columns, table, {"name": cfg.name, "command": command}, paths,
                        best_sweep_trial(study, columns, table, cfg.tasks), study_salt(study))
    print("report: " + ", ".join(str(p) for p in paths))
    return 0
