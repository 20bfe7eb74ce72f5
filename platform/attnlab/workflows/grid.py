"""`attnlab reproduce`: run a comparison grid (rows × tasks × seeds) as one study, then its report."""


from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import optuna

from attnlab.experiments.launch import LaunchOptions, start_workers
from attnlab.experiments.launch import check_storage as check_launch_storage
from attnlab.experiments.storage import DEFAULT_RETRY_S, sqlite_path
from attnlab.experiments.study import (
    EXIT_STORAGE,
    default_storage,
    note_command,
    producing_commands,
    run_worker,
)
from attnlab.experiments.trial import TRIAL_FAILURES
from attnlab.paths import results_dir
from attnlab.report.provenance import command_meta
from attnlab.tracking import WandbTracker
from attnlab.workflows.studies import (
    storage_down,
    storage_url,
    try_existing_study,
)
from attnlab.workflows.wandb_glue import log_leaderboard, study_salt, tracker_for


def reproduce(name: str, *, preset: str | None, storage: str | None, workers: int, dry_run: bool, out: str | None,
              report: bool, wandb: str, wandb_project: str | None, command: str, wandb_checkpoints: bool = False,
              storage_retry_s: float = DEFAULT_RETRY_S, launch: LaunchOptions | None = None,
              until_conclusive: bool = False, max_seeds: int | None = None) -> int:
    from attnlab.experiments import grid as g

    launch = launch or LaunchOptions()
    from attnlab.experiments.grid_config import find_ablation, load_ablation

    abl = load_ablation(find_ablation(name))
    r = abl.resolve(preset)
    study_name = g.study_name(abl, r.preset)
    url = storage_url(storage, abl.storage, lambda: default_storage(study_name, create_dir=not dry_run))
    check_launch_storage(launch.launcher, url)
    if dry_run:  # a dry run never creates a database
        db = sqlite_path(url)
        existing = None if db is not None and not db.is_file() else try_existing_study(study_name, url, storage_retry_s)
        print(g.format_plan(abl, r, existing))
        print_cost(abl, r, Path(out) if out else results_dir() / abl.name, name)
        return 0
    study = g.open_study(abl, r, url, storage_retry_s)
    if not os.environ.get("ATTNLAB_WORKER"):  # workers spawned by --workers stay quiet
        note_command(study, command)  # the report header's "produced by", even when rebuilt later
        g.enqueue_missing_cells(study, r)  # only COMPLETE counts as done: failed/interrupted cells run again
        print(g.format_plan(abl, r, study))
    out_dir = Path(out) if out else results_dir() / abl.name
    tracker = tracker_for(wandb, wandb_project, abl.wandb, checkpoints=wandb_checkpoints)
    code = 0
    if (workers > 1 or launch.launcher != "processes") and not os.environ.get("ATTNLAB_WORKER"):
        argv = ["reproduce", name, "--preset", r.preset, "--storage-retry-s", str(storage_retry_s), "--wandb", wandb,
                "--out", str(out_dir), "--no-report"]
        argv += ["--wandb-project", wandb_project] if wandb_project else []
        argv += ["--wandb-checkpoints"] if wandb_checkpoints else []
        code = start_workers(argv, workers, storage=url, folder=results_dir() / "sweeps" / study_name / "jobs",
                             options=launch, job_name=study_name)
        if code == EXIT_STORAGE:
            raise storage_down(url)
    else:
        run_worker(study, g.make_objective(abl, r, tracker, study_name, out_dir), g.n_cells(r), TRIAL_FAILURES,
                   grid=True)
    if until_conclusive and not os.environ.get("ATTNLAB_WORKER"):
        from attnlab.until_conclusive import add_seeds_until_conclusive

        code = add_seeds_until_conclusive(abl, r, study, tracker, out_dir, max_seeds) or code
    if not report:
        return code
    code = write_grid_report(abl, r, study, out_dir, tracker, command) or code
    return unfinished_exit(g.cell_status(study, r)) or code


def unfinished_exit(status: tuple[int, int, Any]) -> int:
    """1 with one line when grid cells did not finish (a worker stopped on bad data, a crash): the report covers the
    finished ones, and the command is not a success; rerunning it retries only the missing cells."""
    done, total, _ = status
    if done >= total:
        return 0
    print(f"attnlab: {total - done} of {total} cells did not finish (see the errors above); the report covers the "
          f"{done} that did. Fix the cause and rerun the same command: finished cells are kept.", file=sys.stderr)
    return 1


def print_cost(abl: Any, r: Any, out_dir: Path, name: str) -> None:
    """The dry run's compute estimate (experiments/cost_estimate.py): the chosen preset unless it is `smoke`, and
    one line for the `gpu` preset when another was chosen. CPU records in `out_dir` give the time on this CPU;
    `attnlab bench gpu`'s result file, when there is one, the GPU rate."""
    from attnlab.experiments import cost_estimate as ce
    from attnlab.record import RecordError, read_jsonl

    measured = ce.load_gpu_bench()
    path = out_dir / "records.jsonl"
    try:
        records = read_jsonl(path) if path.is_file() else []
    except RecordError as e:  # the estimate must not stop a dry run: say why the CPU line is missing
        print(f"(no CPU time estimate: {e})", file=sys.stderr)
        records = []
    if r.preset != "smoke":
        print("\n".join(ce.cost_lines(ce.estimate(abl, r, measured=measured, cpu_records=records,
                                                    cpu_source=str(path)))))
    if r.preset != "gpu" and "gpu" in abl.presets:
        est = ce.estimate(abl, abl.resolve("gpu"), measured=measured)
        print(f"- preset gpu: {ce.gpu_hours_text(est)}; "
              f"breakdown: attnlab reproduce {name} --preset gpu --dry-run")


def gpu_preset_cost(abl: Any, r: Any, records: Any) -> list[str]:
    """The gpu preset's compute and GPU-hours (experiments.cost_estimate), with this run's CPU records giving the
    time it would take here; [] when the ablation has no gpu preset."""
    from attnlab.experiments.cost_estimate import cost_lines, estimate

    if "gpu" not in abl.presets:
        return []
    cpu = [rec for rec in records if rec.device == "cpu"]
    est = estimate(abl, abl.resolve("gpu"), cpu_records=cpu, cpu_source="this report's records")
    return [line.removeprefix("- ") for line in cost_lines(est)]


def write_grid_report(abl: Any, r: Any, study: optuna.Study, out_dir: Path, tracker: WandbTracker | None,
                      command: str) -> int:
    from attnlab.experiments import adaptive as ad
    from attnlab.experiments import grid as g
    from attnlab.report.ablation import ablation_meta, write_ablation_report

    ext = ad.load_extension(study._storage, study.study_name)  # seeds added by --until-conclusive, if any
    plan = ad.load_plan(ext) if ext is not None else None
    records = ad.all_records(study, ext)
    if not records:
        print("no finished cell yet: nothing to report", file=sys.stderr)
        return 1
    speed = None
    if r.speed_bench:
        from attnlab.bench.ablation_speed import speed_table

        speed = speed_table(dict(r.speed_bench), out_dir / "speed.json")
    meta = {**ablation_meta(abl, r, command, out_dir), **command_meta(producing_commands(study), command)}
    meta["gpu_cost"] = gpu_preset_cost(abl, r, records)
    if plan is not None:
        meta.update(added_seeds=list(plan["added_seeds"]), sequential=plan)
    paths, rows = write_ablation_report(meta, records, out_dir, speed)
    if tracker is not None and rows:
        columns = list(rows[0])
        best = next(({"row": row["row"], "overall": row.get("overall")} for row in rows if row.get("rank") == 1), None)
        log_leaderboard(tracker, f"{meta['name']}-{meta['preset']}", columns, [[row[c] for c in columns] for row in rows],
                        {k: meta[k] for k in ("name", "preset", "command", "git_commit")}, paths, best, study_salt(study))
    done, total, _ = g.cell_status(study, r)
    print(f"{done}/{total} cells finished; report: " + ", ".join(str(p) for p in paths))
    return 0


# ---- report -----------------------------------------------------------------------------------------
