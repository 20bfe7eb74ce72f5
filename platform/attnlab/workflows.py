"""What the commands do, above every layer: a study runs (here or in K workers), then its leaderboard is written
from the storage — for sweeps and grids alike — and logged as a W&B table. The CLI only parses and calls these.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import optuna

from attnlab.errors import ConfigError
from attnlab.experiments.study import (
    default_storage,
    load_or_create,
    normalize_url,
    run_worker,
    spawn_workers,
)
from attnlab.experiments.sweep_config import SweepConfig, load_sweep
from attnlab.experiments.trial import TRIAL_FAILURES
from attnlab.paths import results_dir
from attnlab.tracking import TrackingConfig, WandbTracker, start_run


def tracker_for(mode: str, project: str | None, defaults: dict[str, Any]) -> WandbTracker:
    import dataclasses

    base = TrackingConfig(**{k: v for k, v in defaults.items() if k in {"project", "entity", "dir"}})
    return WandbTracker(dataclasses.replace(base, mode=mode, project=project or base.project))


def log_leaderboard(tracker: WandbTracker, name: str, columns: list[str], rows: list[list[Any]],
                    config: dict[str, Any]) -> None:
    if not rows:
        return
    run = start_run(tracker.cfg, name=f"{name}-leaderboard", group=name, job_type="report", tags=["leaderboard"],
                    config=config)
    run.log_table("leaderboard", columns, rows)
    run.finish()


# ---- sweeps -------------------------------------------------------------------------------------
def sweep(path: str, *, n_trials: int | None, storage: str | None, workers: int, wandb: str,
          wandb_project: str | None, out: str | None, report: bool, command: str) -> int:
    cfg = load_sweep(path)
    n = n_trials or cfg.n_trials
    url = storage or cfg.storage or default_storage(cfg.name)
    tracker = tracker_for(wandb, wandb_project, cfg.wandb)
    if workers > 1 and not os.environ.get("ATTNLAB_WORKER"):
        argv = ["sweep", path, "--n-trials", str(n), "--storage", url, "--wandb", wandb, "--no-report"]
        if wandb_project:
            argv += ["--wandb-project", wandb_project]
        code = spawn_workers(argv, workers)
    else:
        from attnlab.experiments.sweep import make_objective

        study = load_or_create(cfg, url)
        run_worker(study, make_objective(cfg, tracker, study.study_name), n, TRIAL_FAILURES)
        code = 0
    study = load_or_create(cfg, url)
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
    meta = sweep_meta(cfg, command, out_dir)
    paths = build_sweep_report(meta, rows, out_dir)
    if tracker is not None:
        columns, table = leaderboard_table(meta, rows)
        log_leaderboard(tracker, study.study_name, columns, table, {"name": cfg.name, "command": command})
    print("report: " + ", ".join(str(p) for p in paths))
    return 0


def open_existing_study(name: str, url: str) -> optuna.Study:
    """Load a study without ever creating a database: a wrong --storage is an error, not an empty file."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if not db.is_file():
            raise ConfigError(f"no study database at {db}; run the experiment first or pass --storage")
    try:
        return optuna.load_study(study_name=name, storage=normalize_url(url))
    except KeyError:
        raise ConfigError(f"no study {name!r} in that storage; run `attnlab sweep FILE` first or pass --storage") from None


def sweep_status(target: str, storage: str | None) -> int:
    from attnlab.experiments.status import format_status

    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        cfg = load_sweep(target)
        name, url = cfg.name, storage or cfg.storage or default_storage(cfg.name, create_dir=False)
    else:
        name, url = target, storage or default_storage(target, create_dir=False)
    print(format_status(open_existing_study(name, url)))
    return 0


# ---- grids (ablations) ------------------------------------------------------------------------------
def reproduce(name: str, *, preset: str | None, storage: str | None, workers: int, dry_run: bool, out: str | None,
              report: bool, wandb: str, wandb_project: str | None, command: str) -> int:
    from attnlab.experiments import grid as g
    from attnlab.experiments.grid_config import find_ablation, load_ablation

    abl = load_ablation(find_ablation(name))
    r = abl.resolve(preset)
    study_name = g.study_name(abl, r.preset)
    url = storage or abl.storage or default_storage(study_name)
    study = g.open_study(abl, r, url)
    if not os.environ.get("ATTNLAB_WORKER"):  # workers spawned by --workers stay quiet
        print(g.format_plan(abl, r, study))
    if dry_run:
        return 0
    out_dir = Path(out) if out else results_dir() / abl.name
    tracker = tracker_for(wandb, wandb_project, abl.wandb)
    code = 0
    if workers > 1 and not os.environ.get("ATTNLAB_WORKER"):
        argv = ["reproduce", name, "--preset", r.preset, "--storage", url, "--wandb", wandb, "--out", str(out_dir),
                "--no-report"]
        code = spawn_workers(argv, workers)
    else:
        run_worker(study, g.make_objective(abl, r, tracker, study_name, out_dir), g.n_cells(r), TRIAL_FAILURES)
    if not report:
        return code
    return write_grid_report(abl, r, study, out_dir, tracker, command) or code


def write_grid_report(abl: Any, r: Any, study: optuna.Study, out_dir: Path, tracker: WandbTracker | None,
                      command: str) -> int:
    from attnlab.experiments import grid as g
    from attnlab.report.ablation import ablation_meta, write_ablation_report

    records = g.completed_records(study)
    if not records:
        print("no finished cell yet: nothing to report", file=sys.stderr)
        return 1
    speed = None
    if r.speed_bench:
        from attnlab.bench.ablation_speed import speed_table

        speed = speed_table(dict(r.speed_bench), out_dir / "speed.json")
    meta = ablation_meta(abl, r, command, out_dir)
    paths, rows = write_ablation_report(meta, records, out_dir, speed)
    if tracker is not None and rows:
        columns = list(rows[0])
        log_leaderboard(tracker, f"{meta['name']}-{meta['preset']}", columns, [[row[c] for c in columns] for row in rows],
                        {k: meta[k] for k in ("name", "preset", "command", "git_commit")})
    done, total, _ = g.cell_status(study, r)
    print(f"{done}/{total} cells finished; report: " + ", ".join(str(p) for p in paths))
    return 0


# ---- report -----------------------------------------------------------------------------------------
def report(target: str, *, preset: str | None, storage: str | None, out: str | None, wandb: str,
           wandb_project: str | None) -> int:
    """Rebuild a leaderboard: from exported files (records.jsonl / trials.jsonl / a report folder), a sweep file
    (reads its study) or an ablation name/file (reads its study)."""
    path = Path(target)
    if path.suffix == ".jsonl" or path.is_dir():
        return _report_exported(path, out)
    if path.suffix in (".yaml", ".yml") and _is_sweep_file(path):
        cfg = load_sweep(path)
        url = storage or cfg.storage or default_storage(cfg.name, create_dir=False)
        study = open_existing_study(cfg.name, url)
        tracker = tracker_for(wandb, wandb_project, cfg.wandb)
        return write_sweep_report(cfg, study, Path(out) if out else results_dir() / cfg.name, tracker,
                                  f"attnlab report {target}")
    from attnlab.experiments import grid as g
    from attnlab.experiments.grid_config import find_ablation, load_ablation

    abl = load_ablation(find_ablation(target))
    r = abl.resolve(preset)
    url = storage or abl.storage or default_storage(g.study_name(abl, r.preset), create_dir=False)
    study = open_existing_study(g.study_name(abl, r.preset), url)
    out_dir = Path(out) if out else results_dir() / abl.name
    return write_grid_report(abl, r, study, out_dir, tracker_for(wandb, wandb_project, abl.wandb),
                             f"attnlab report {target} --preset {r.preset}")


def _is_sweep_file(path: Path) -> bool:
    from attnlab.config import load_yaml

    data = load_yaml(path)
    return "space" in data or "objectives" in data


def _report_exported(path: Path, out: str | None) -> int:
    from attnlab.report.sweep import build_sweep_report, is_sweep_export, load_sweep_export

    folder = path.parent if path.suffix == ".jsonl" else path
    if is_sweep_export(path):
        meta, rows = load_sweep_export(path)
        paths = build_sweep_report(meta, rows, Path(out) if out else folder)
    else:
        from attnlab.report import build_report, load_exported

        meta, records, speed = load_exported(path)
        paths = build_report(meta, records, Path(out) if out else folder, speed=speed)
    for p in paths:
        print(p)
    return 0
