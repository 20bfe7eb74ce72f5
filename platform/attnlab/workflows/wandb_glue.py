"""The W&B side of a study: trackers, the leaderboard run and its artifacts, the best trial."""


from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from attnlab.experiments.trial import SALT_ATTR, stable_run_id
from attnlab.tracking import Run, TrackingConfig, WandbTracker, start_run, sync_command


def tracker_for(mode: str, project: str | None, defaults: dict[str, Any], checkpoints: bool = False) -> WandbTracker:
    import dataclasses

    base = TrackingConfig(**{k: v for k, v in defaults.items() if k in {"project", "entity", "dir"}})
    return WandbTracker(dataclasses.replace(base, mode=mode, project=project or base.project,
                                            log_checkpoints=checkpoints))


def say_where(run: Run, what: str) -> None:
    """One line telling the user where a W&B run went (and how to upload an offline one)."""
    if run.run_dir is not None and run.mode == "offline":
        print(f"wandb: {what} in {run.run_dir} (upload: {sync_command(run.run_dir)})")
    elif run.id is not None:
        print(f"wandb: {what} logged online, run id {run.id}")


def log_leaderboard(tracker: WandbTracker, name: str, columns: list[str], rows: list[list[Any]],
                    config: dict[str, Any], files: list[Path] | None = None,
                    best: dict[str, Any] | None = None, salt: str = "") -> None:
    """The study's "leaderboard" run in its group: the table, the report files as one "report" artifact, and
    the best trial (`best`: trial/row, its runs' ids, its values) in the summary. Its id is stable per study,
    so a rebuilt report resumes it."""
    if not rows:
        return
    run = start_run(tracker.cfg, name=f"{name}-leaderboard", group=name, job_type="report", tags=["leaderboard"],
                    config=config, run_id=stable_run_id(name, "leaderboard", salt))
    run.log_table("leaderboard", columns, rows)
    if best:
        run.summary({"best": best})
    report_files = [f for f in files or [] if f.is_file()]
    if report_files:
        run.log_artifact(f"{name}-report", "report", report_files, {"study": name})
    say_where(run, "leaderboard, report artifact")
    run.finish()


# ---- one run ------------------------------------------------------------------------------------


def best_sweep_trial(study: optuna.Study, columns: list[str], table: list[list[Any]],
                     tasks: Any) -> dict[str, Any] | None:
    """The rank-1 trial of the leaderboard table: its number, objective values and the ids of its W&B runs."""
    top = next((line for line in table if line[columns.index("rank")] == 1), None)
    if top is None:
        return None
    number = int(top[columns.index("trial")])
    frozen = study.get_trials(deepcopy=False)[number]
    origin = int(frozen.system_attrs.get("failed_trial", number))  # a retried trial logged under its origin
    return {"trial": number, "values": frozen.values,
            "run_ids": [stable_run_id(study.study_name, f"trial{origin}/{task}", study_salt(study)) for task in tasks]}


def study_salt(study: optuna.Study) -> str:
    """The salt the study's tracked runs were started with (reading it never writes to the storage)."""
    return str(study.user_attrs.get(SALT_ATTR, ""))
