"""Paper reproductions: an ablation's grid rows × tasks × seeds as ONE Optuna study (grid sampler),
so it is resumable, shareable between workers/machines, and completed cells are never rerun.

Optional pretrain-then-finetune: a masked-LM (or LM) stage per row, cached by the hash of its
resolved config under `results/<name>/pretrain/<hash>/` and shared by every task and seed of that
row (a file lock makes concurrent workers wait for one pretraining instead of duplicating it).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from attnlab.config import RunConfig, config_hash
from attnlab.experiments.grid_config import AblationConfig, Resolved, Row, pretrain_corpus
from attnlab.experiments.recovery import on_stale
from attnlab.experiments.storage import DEFAULT_RETRY_S
from attnlab.experiments.study import default_storage, make_pruner, open_storage
from attnlab.experiments.trial import PlannedRun, Tracker, run_trial
from attnlab.record import Record, records_from_trial_attrs

SEED_MAX = 2**31 - 1


def study_name(abl: AblationConfig, preset: str) -> str:
    return f"{abl.name}-{preset}"


def grid_space(r: Resolved) -> dict[str, list[Any]]:
    return {"row": [row.name for row in r.rows], "task": list(r.tasks), "seed": list(r.seeds)}


def n_cells(r: Resolved) -> int:
    return len(r.rows) * len(r.tasks) * len(r.seeds)


def open_study(abl: AblationConfig, r: Resolved, storage_url: str | None = None,
               retry_s: float = DEFAULT_RETRY_S) -> optuna.Study:
    name = study_name(abl, r.preset)
    url = storage_url or abl.storage or default_storage(name)
    storage = open_storage(url, retry_s=retry_s, stale_callback=on_stale)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=optuna.samplers.GridSampler(grid_space(r), seed=0),
                                pruner=make_pruner({"name": "none"}), load_if_exists=True)
    study.set_user_attr("ablation_file", str(abl.path))
    study.set_user_attr("preset", r.preset)
    study.set_user_attr("objectives", ["val/score"])
    return study


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the process dies, too
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pretrain_run_config(abl: AblationConfig, r: Resolved, row: Row, language: str) -> RunConfig:
    """The pretraining stage of `row`. Its name carries no row name, so rows whose pretraining configs are equal
    (e.g. ALBERT tied and ALBERT untied: they differ only after pretraining) hash equal and share one checkpoint."""
    from dataclasses import replace

    assert r.pretrain is not None
    return replace(abl.pretrain_config(r, row, pretrain_corpus(r, language)), name=f"{abl.name}-pretrain")


def ensure_pretrained(abl: AblationConfig, r: Resolved, row: Row, language: str, root: Path) -> Path:
    """Pretrain `row` once (per corpus; shared by rows with equal pretraining configs) and return the directory
    holding model.ckpt + tokenizer.json."""
    from attnlab.train.runner import train_run

    cfg = pretrain_run_config(abl, r, row, language)
    out = root / config_hash(cfg)
    ckpt = out / "model.ckpt"
    with file_lock(root / f"{config_hash(cfg)}.lock"):
        if ckpt.exists() and (out / "tokenizer.json").exists():
            return out
        tmp = out.with_name(out.name + ".partial")
        record = train_run(cfg, progress=False, checkpoint_path=tmp / "model.ckpt")
        (tmp / "record.json").write_text(json.dumps(record.to_dict(), indent=2, sort_keys=True))
        tmp.replace(out)  # atomic: a crash never leaves a half-written cache entry
    return out


def make_objective(abl: AblationConfig, r: Resolved, tracker: Tracker, name: str, out_dir: Path,
                   any_seed: bool = False) -> Any:
    """A grid cell (row, task, seed) → its run config (after the row's cached pretraining) → the one trial body.
    `any_seed`: the seed is an integer parameter, not one of the grid's (`adaptive.py`'s added seeds)."""
    from dataclasses import replace

    from attnlab.tasks import get_task

    rows = {row.name: row for row in r.rows}

    def objective(trial: optuna.Trial) -> float:
        row = rows[trial.suggest_categorical("row", [x.name for x in r.rows])]
        task = str(trial.suggest_categorical("task", list(r.tasks)))
        seed = (int(trial.suggest_int("seed", 0, SEED_MAX)) if any_seed
                else int(trial.suggest_categorical("seed", list(r.seeds))))  # type: ignore[arg-type]
        extra: dict[str, Any] = {}
        if r.pretrain is not None and row.pretrain:
            pre = ensure_pretrained(abl, r, row, get_task(task).language, out_dir / "pretrain")
            extra = {"model.init_from": str(pre / "model.ckpt"), "task.tokenizer": str(pre)}
        if row.untie:
            extra["model.untie"] = True
        cfg = replace(abl.run_config(r, row, task, seed, extra), name=f"{name}-{row.name}")
        cell = f"{row.name}/{task}/s{seed}"  # also the W&B run's stable id: a redone cell resumes its run
        run = PlannedRun(cfg, label=cell, tags=(f"row={row.name}", f"seed={seed}"),
                         row=row.name, params={"row": row.name, "task": task, "seed": seed}, key=cell)
        (record,) = run_trial(trial, [run], study=name, tracker=tracker)
        return primary_value(record)

    return objective


def primary_value(record: Record) -> float:
    """What a grid trial reports to Optuna: the task score, or minus perplexity for language modelling."""
    return record.metrics["val/score"] if "val/score" in record.metrics else -record.metrics["val/perplexity"]


def completed_records(study: optuna.Study) -> list[Record]:
    """One record per grid cell (the first completed trial of each cell)."""
    seen: dict[tuple[str, str, int], Record] = {}
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
        for rec in records_from_trial_attrs(t.user_attrs, f"trial {t.number}"):
            if rec.row is None:  # schema 1 reproductions kept row/trial in the record under the same keys
                continue
            seen.setdefault((rec.row, rec.task, rec.seed), rec)
    return list(seen.values())


def cell_key(params: dict[str, Any]) -> tuple[str, str, int] | None:
    try:
        return str(params["row"]), str(params["task"]), int(params["seed"])
    except (KeyError, TypeError, ValueError):
        return None


def enqueue_missing_cells(study: optuna.Study, r: Resolved) -> int:
    """Queue every cell without a COMPLETE trial and with none queued or running: only COMPLETE counts as
    done, so a cell that failed or was interrupted (or never started) runs again. Returns how many."""
    trials = study.get_trials(deepcopy=False)
    covered = {cell_key(t.params) for t in trials
               if t.state in (TrialState.COMPLETE, TrialState.RUNNING)}
    covered |= {cell_key(t.system_attrs.get("fixed_params") or t.params) for t in trials
                if t.state == TrialState.WAITING}
    added = 0
    for row in r.rows:
        for task in r.tasks:
            for seed in r.seeds:
                if (row.name, task, int(seed)) not in covered:
                    study.enqueue_trial({"row": row.name, "task": task, "seed": int(seed)})
                    added += 1
    return added


def cell_status(study: optuna.Study, r: Resolved) -> tuple[int, int, float | None]:
    """(done cells, total cells, mean wall time of a finished run in seconds or None)."""
    recs = completed_records(study)
    walls = [x.cost.wall_time_s for x in recs]
    return len(recs), n_cells(r), (sum(walls) / len(walls) if walls else None)


def format_plan(abl: AblationConfig, r: Resolved, study: optuna.Study | None) -> str:
    done, total, mean_s = cell_status(study, r) if study is not None else (0, n_cells(r), None)
    per_run = mean_s if mean_s is not None else r.est_run_s
    n_pre = sum(1 for row in r.rows if row.pretrain) * len({t.split("/")[0] for t in r.tasks}) if r.pretrain else 0
    lines = [f"{abl.title} — preset {r.preset}",
             f"rows ({len(r.rows)}): " + ", ".join(row.name + (" [untie]" if row.untie else "") for row in r.rows),
             f"tasks ({len(r.tasks)}): {', '.join(r.tasks)}", f"seeds ({len(r.seeds)}): {list(r.seeds)}",
             f"cells: {total} ({done} done, {total - done} to run)"]
    if r.pretrain is not None:
        lines.append(f"pretraining: {r.pretrain.objective} on {r.pretrain.task}, up to {n_pre} cached checkpoint(s)")
    est = (total - done) * per_run
    source = "mean of finished runs" if mean_s is not None else "preset estimate"
    lines.append(f"estimated time: {est / 60:.1f} min on one worker ({per_run:.0f} s/run, {source}"
                 f"{', plus pretraining' if r.pretrain else ''})")
    return "\n".join(lines)
