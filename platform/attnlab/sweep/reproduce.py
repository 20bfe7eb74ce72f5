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

from attnlab.ablation import AblationConfig, Resolved, Row, pretrain_corpus
from attnlab.config import config_hash, to_dict
from attnlab.sweep.objective import TRIAL_FAILURES, flat_summary
from attnlab.sweep.study import default_storage, make_pruner, open_storage


def study_name(abl: AblationConfig, preset: str) -> str:
    return f"{abl.name}-{preset}"


def grid_space(r: Resolved) -> dict[str, list[Any]]:
    return {"row": [row.name for row in r.rows], "task": list(r.tasks), "seed": list(r.seeds)}


def n_cells(r: Resolved) -> int:
    return len(r.rows) * len(r.tasks) * len(r.seeds)


def open_study(abl: AblationConfig, r: Resolved, storage_url: str | None = None) -> optuna.Study:
    name = study_name(abl, r.preset)
    url = storage_url or abl.storage or default_storage(name)
    study = optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize",
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


def ensure_pretrained(abl: AblationConfig, r: Resolved, row: Row, language: str, root: Path) -> Path:
    """Pretrain `row` once (per corpus) and return the directory holding model.ckpt + tokenizer.json."""
    from dataclasses import replace

    from attnlab.runner import train_run

    assert r.pretrain is not None
    cfg = replace(abl.pretrain_config(r, row, pretrain_corpus(r, language)), name=f"{abl.name}-pretrain-{row.name}")
    out = root / config_hash(cfg)
    ckpt = out / "model.ckpt"
    with file_lock(root / f"{config_hash(cfg)}.lock"):
        if ckpt.exists() and (out / "tokenizer.json").exists():
            return out
        tmp = out.with_name(out.name + ".partial")
        record = train_run(cfg, progress=False, checkpoint_path=tmp / "model.ckpt")
        (tmp / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        tmp.replace(out)  # atomic: a crash never leaves a half-written cache entry
    return out


def make_objective(abl: AblationConfig, r: Resolved, tracking: Any, name: str, out_dir: Path) -> Any:
    from attnlab.runner import train_run
    from attnlab.tasks import get_task
    from attnlab.tracking import WandbCallback, start_run

    rows = {row.name: row for row in r.rows}

    def objective(trial: optuna.Trial) -> float:
        row = rows[trial.suggest_categorical("row", [x.name for x in r.rows])]
        task = str(trial.suggest_categorical("task", list(r.tasks)))
        seed = int(trial.suggest_categorical("seed", list(r.seeds)))  # type: ignore[arg-type]
        extra: dict[str, Any] = {}
        if r.pretrain is not None and row.pretrain:
            pre = ensure_pretrained(abl, r, row, get_task(task).language, out_dir / "pretrain")
            extra = {"model.init_from": str(pre / "model.ckpt"), "task.tokenizer": str(pre)}
        if row.untie:
            extra["model.untie"] = True
        cfg = abl.run_config(r, row, task, seed, extra)
        from dataclasses import replace

        cfg = replace(cfg, name=f"{name}-{row.name}")
        label = f"{row.name}/{task}/s{seed}"
        run = start_run(tracking, name=label, group=name, job_type=task, tags=[f"row={row.name}", f"seed={seed}"],
                        config={**to_dict(cfg), "row": row.name, "trial": trial.number})
        try:
            record = train_run(cfg, callbacks=[WandbCallback(run)], progress=False)
        except TRIAL_FAILURES as e:
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}")
            run.finish(exit_code=1)
            raise
        except BaseException:
            run.finish(exit_code=1)
            raise
        run.summary(flat_summary(record))
        run.finish()
        record.update({"row": row.name, "seed": seed, "trial": trial.number})
        trial.set_user_attr("record", record)
        metrics = record["metrics"]
        return float(metrics["val/score"]) if "val/score" in metrics else -float(metrics["val/perplexity"])

    return objective


def completed_records(study: optuna.Study) -> list[dict[str, Any]]:
    """One record per grid cell (the first completed trial of each cell)."""
    seen: dict[tuple[str, str, int], dict[str, Any]] = {}
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number):
        rec = t.user_attrs.get("record")
        if rec is not None:
            seen.setdefault((rec["row"], rec["task"], int(rec["seed"])), rec)
    return list(seen.values())


def cell_status(study: optuna.Study, r: Resolved) -> tuple[int, int, float | None]:
    """(done cells, total cells, mean wall time of a finished run in seconds or None)."""
    recs = completed_records(study)
    walls = [float(x["cost"]["wall_time_s"]) for x in recs]
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


def report_meta(abl: AblationConfig, r: Resolved, command: str, out: Path | None = None) -> dict[str, Any]:
    import datetime as dt

    import attnlab
    from attnlab.runner import git_commit

    out = out or Path("results") / abl.name
    return {
        "name": abl.name, "title": abl.title, "paper": abl.paper, "preset": r.preset, "command": command,
        "attnlab_version": attnlab.__version__, "git_commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "baseline": abl.baseline,
        "rows": [row.name for row in r.rows], "tasks": list(r.tasks), "seeds": list(r.seeds),
        "claims": list(abl.claims), "paper_numbers": dict(abl.paper_numbers), "notes": list(abl.notes),
        "pretrain": None if r.pretrain is None else {"task": r.pretrain.task, "objective": r.pretrain.objective,
                                                     "set": r.pretrain.set},
        "regenerate": f"attnlab report {out / 'records.jsonl'}",
    }


def write_report(meta: dict[str, Any], records: list[dict[str, Any]], out_dir: Path,
                 speed: list[dict[str, Any]] | None, tracking: Any) -> list[Path]:
    """Tables, plots, HTML, exported records; and the leaderboard as a W&B Table in the study's group."""
    from attnlab.report import build_report, leaderboard_rows
    from attnlab.tracking import start_run

    paths = build_report(meta, records, out_dir, speed=speed)
    rows = leaderboard_rows(meta, records)
    if rows:
        columns = list(rows[0])
        run = start_run(tracking, name=f"{meta['name']}-{meta['preset']}-leaderboard",
                        group=f"{meta['name']}-{meta['preset']}", job_type="report", tags=["leaderboard"],
                        config={k: meta[k] for k in ("name", "preset", "command", "git_commit")})
        run.log_table("leaderboard", columns, [[row[c] for c in columns] for row in rows])
        run.finish()
    return paths


def speed_rows(abl: AblationConfig, r: Resolved, out_dir: Path) -> list[dict[str, Any]] | None:
    """Time/memory vs sequence length for the ablation's speed columns (linear attention)."""
    from attnlab.bench.ablation_speed import speed_table

    spec = dict(r.speed_bench or {})
    return speed_table(spec, out_dir / "speed.json")
