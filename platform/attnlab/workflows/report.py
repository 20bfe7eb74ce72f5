"""`attnlab report`: rebuild a leaderboard from a study's storage or from its exported files."""


from __future__ import annotations

from pathlib import Path

from attnlab.experiments.study import (
    default_storage,
)
from attnlab.experiments.sweep_config import load_sweep
from attnlab.paths import results_dir
from attnlab.tracking import WandbTracker
from attnlab.workflows.grid import write_grid_report
from attnlab.workflows.studies import (
    open_existing_study,
)
from attnlab.workflows.sweep import write_sweep_report
from attnlab.workflows.wandb_glue import log_leaderboard, tracker_for


def report(target: str, *, preset: str | None, storage: str | None, out: str | None, wandb: str,
           wandb_project: str | None) -> int:
    """Rebuild a leaderboard: from exported files (records.jsonl / trials.jsonl / a report folder), a sweep file
    (reads its study) or an ablation name/file (reads its study)."""
    path = Path(target)
    if path.suffix == ".jsonl" or path.is_dir():
        return _report_exported(path, out, tracker_for(wandb, wandb_project, {}))
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


def _report_exported(path: Path, out: str | None, tracker: WandbTracker) -> int:
    """Rebuild from exported files; the leaderboard and report files go to W&B like a study's (no best-trial
    run ids: an export does not know the study's retries)."""
    from attnlab.report.sweep import build_sweep_report, is_sweep_export, leaderboard_table, load_sweep_export

    folder = path.parent if path.suffix == ".jsonl" else path
    config = {"command": f"attnlab report {path}"}
    if is_sweep_export(path):
        meta, rows = load_sweep_export(path)
        paths = build_sweep_report(meta, rows, Path(out) if out else folder)
        columns, table = leaderboard_table(meta, rows)
    else:
        from attnlab.report import build_report, load_exported
        from attnlab.report.leaderboard import leaderboard_rows

        meta, records, speed = load_exported(path)
        paths = build_report(meta, records, Path(out) if out else folder, speed=speed)
        lines = leaderboard_rows(meta, records)
        columns = list(lines[0]) if lines else []
        table = [[line[c] for c in columns] for line in lines]
    for p in paths:
        print(p)
    name = str(meta.get("study") or "-".join(str(meta[k]) for k in ("name", "preset") if meta.get(k)) or folder.name)
    log_leaderboard(tracker, name, columns, table, {**config, "name": meta.get("name")}, paths)
    return 0
