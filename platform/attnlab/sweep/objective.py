"""The trial body: sampled values → one training run per task → objective values + full record."""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna
import torch

from attnlab.config import to_dict
from attnlab.lit.common import NonFiniteLossError
from attnlab.sweep.pruning import PruningCallback
from attnlab.sweep.space import suggest_all
from attnlab.sweep.spec import SweepConfig

# Outcomes that end one trial as FAIL (reason recorded) while the study goes on.
TRIAL_FAILURES: tuple[type[Exception], ...] = (NonFiniteLossError, torch.OutOfMemoryError)


def metric_value(record: dict[str, Any], metric: str) -> float:
    section, _, key = metric.partition("/")
    if section == "cost":
        return float(record["cost"][key])
    return float(record["metrics"][metric])


def trial_tags(values: dict[str, Any]) -> list[str]:
    return [f"{path.rsplit('.', 1)[-1]}={v}"[:64] for path, v in values.items()]


def flat_summary(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(record["metrics"])
    out.update({f"cost/{k}": v for k, v in record["cost"].items()})
    return out


def make_objective(sweep: SweepConfig, tracking: Any, study_name: str) -> Any:
    from attnlab.runner import train_run
    from attnlab.tracking import WandbCallback, start_run

    prune = sweep.pruner.get("name", "none") != "none"

    def objective(trial: optuna.Trial) -> float | list[float]:
        values = suggest_all(list(sweep.params), trial)
        label = f"{study_name}#{trial.number}"
        records: dict[str, Any] = {}
        offset = 0
        for task in sweep.tasks:
            cfg = dataclasses.replace(sweep.run_config(values, task), name=f"{study_name}-t{trial.number}")
            run = start_run(tracking, name=label, group=study_name, job_type=task, tags=trial_tags(values),
                            config={**to_dict(cfg), "trial": trial.number, "params": values})
            callbacks: list[Any] = [WandbCallback(run)]
            if prune:
                callbacks.append(PruningCallback(trial, sweep.objectives[0].metric, offset))
            try:
                record = train_run(cfg, callbacks=callbacks, progress=False)
            except optuna.TrialPruned:
                run.summary({"state": "pruned"})
                run.finish()
                raise
            except TRIAL_FAILURES as e:
                trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}")
                trial.set_user_attr("failed_task", task)
                run.summary({"state": "failed", "fail_reason": str(e)[:500]})
                run.finish(exit_code=1)
                raise
            except BaseException:
                run.finish(exit_code=1)  # never leave a W&B run open on an unexpected error
                raise
            run.summary(flat_summary(record))
            run.finish()
            records[task] = record
            trial.set_user_attr("records", records)  # stored task by task: a crash keeps what finished
            offset += cfg.train.max_steps
        scores = [sum(metric_value(r, o.metric) for r in records.values()) / len(records) for o in sweep.objectives]
        return scores[0] if len(scores) == 1 else scores

    return objective
