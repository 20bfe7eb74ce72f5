"""`attnlab reproduce NAME --until-conclusive --max-seeds N`: after the grid, add seeds one planned look at a
time to the rows of claims still undecided. `report/sequential.py` decides (group-sequential t test, O'Brien–Fleming
alpha spending); `experiments/adaptive.py` queues and runs the cells in a second study of the grid's storage.
Sits above both (like the workflows that call it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import optuna

from attnlab.errors import ConfigError
from attnlab.experiments.study import run_worker
from attnlab.experiments.trial import TRIAL_FAILURES, Tracker


def sequential_meta(abl: Any, r: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """What `report.sequential` needs to decide the claims: the grid's shape, the claims, the planned looks."""
    return {"rows": [row.name for row in r.rows], "tasks": list(r.tasks), "seeds": list(r.seeds),
            "added_seeds": list(plan["added_seeds"]), "baseline": abl.baseline, "claims": list(abl.claims),
            "sequential": plan}


def add_seeds_until_conclusive(abl: Any, r: Any, study: optuna.Study, tracker: Tracker, out_dir: Path,
                               max_seeds: int | None) -> int:
    """`--until-conclusive`: at each planned look, queue the next seed for the rows of every claim still
    undecided (report/sequential.py decides, experiments/adaptive.py queues and runs) until none is left. The added
    seeds run in this process, one cell at a time; a rerun of the command resumes where it stopped."""
    from attnlab.experiments import adaptive as ad
    from attnlab.experiments import grid as g
    from attnlab.report.sequential import ALPHA, METHOD, looks_for, pending_cells

    max_seeds = max_seeds or 2 * len(r.seeds)
    plan = {"looks": list(looks_for(len(r.seeds), max_seeds)), "alpha": ALPHA, "method": METHOD,
            "max_seeds": max_seeds, "added_seeds": ad.added_seeds(r, max_seeds)}
    ext = ad.open_extension(study._storage, study.study_name)  # the grid's storage, a second study in it
    if ad.load_plan(ext) not in (None, plan):
        raise ConfigError(f"{ext.study_name} was planned with {ad.load_plan(ext)}; rerun with the same --max-seeds")
    ad.save_plan(ext, plan)
    meta = sequential_meta(abl, r, plan)
    objective = ad.queued_only(g.make_objective(abl, r, tracker, ext.study_name, out_dir, any_seed=True))
    tried: set[tuple[str, str, int]] = set()
    while cells := pending_cells(meta, [x.to_dict() for x in ad.all_records(study, ext)]):
        if tried & set(cells):
            print(f"--until-conclusive: {len(tried & set(cells))} added cell(s) did not finish (see the trial lines "
                  "above); rerun the same command to retry them", file=sys.stderr)
            return 1
        tried |= set(cells)
        ad.enqueue_cells(ext, cells, study)
        print(f"--until-conclusive: {len(cells)} cell(s) for the next look: "
              + ", ".join(f"{row}/{task}/s{seed}" for row, task, seed in cells[:12])
              + (" …" if len(cells) > 12 else ""), flush=True)
        run_worker(ext, objective, 0, TRIAL_FAILURES, grid=True)
    return 0
