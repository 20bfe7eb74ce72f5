"""A sweep's objective: sampled values → one planned run per task → the one trial body → objective values."""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna

from attnlab.experiments.space import suggest_all
from attnlab.experiments.sweep_config import SweepConfig
from attnlab.experiments.trial import PlannedRun, Tracker, mean_value, run_trial, trial_tags


def make_objective(sweep: SweepConfig, tracker: Tracker, study_name: str) -> Any:
    prune_metric = sweep.objectives[0].metric if sweep.pruner.get("name", "none") != "none" else None

    def objective(trial: optuna.Trial) -> float | list[float]:
        values = suggest_all(list(sweep.params), trial)
        runs = [PlannedRun(dataclasses.replace(sweep.run_config(values, task), name=f"{study_name}-t{trial.number}"),
                           label=f"{study_name}#{trial.number}", tags=trial_tags(values), params=values)
                for task in sweep.tasks]
        records = run_trial(trial, runs, study=study_name, tracker=tracker, prune_metric=prune_metric)
        scores = [mean_value(records, o.metric) for o in sweep.objectives]
        return scores[0] if len(scores) == 1 else scores

    return objective
