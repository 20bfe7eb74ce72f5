"""Everything a sweep report shows, computed once from (meta, trial rows): the ranking, the Pareto front,
per-parameter importance (Optuna's PED-ANOVA evaluator on an in-memory study rebuilt from the rows, so it
works from exported files too), per-trial cost and per-task metrics."""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.trial import FrozenTrial

from attnlab.experiments.results import TrialRow
from attnlab.report.stats import rank

MIN_IMPORTANCE_TRIALS = 3
# PED-ANOVA asks which parameters matter to reach the top quantile of trials; its authors advise ≥ 5 trials
# in that quantile, so small sweeps use a larger quantile (at most the top half).
TOP_TRIALS_WANTED = 5


@dataclass(frozen=True)
class Importance:
    values: dict[str, list[float | None]]  # param → importance per objective (None: objective constant)
    message: str | None  # why no importance was computed at all
    notes: list[str]
    target_quantile: float | None
    n_trials: int


@dataclass(frozen=True)
class SweepData:
    meta: Mapping[str, Any]
    rows: Sequence[TrialRow]
    metrics: list[str]  # objective metrics
    directions: list[str]  # "maximize" | "minimize", one per objective
    ranked: list[TrialRow]  # COMPLETE trials, best first by the first objective (then the next ones)
    ranks: list[int]  # competition rank by the first objective
    others: list[TrialRow]  # every trial that did not complete, by number
    pareto: list[TrialRow]  # non-dominated complete trials (multi-objective), best first
    importance: Importance
    params: list[str]  # parameter paths, space order first
    tasks: list[str]

    @property
    def multi(self) -> bool:
        return len(self.metrics) > 1

    @property
    def pareto_numbers(self) -> set[int]:
        return {r.number for r in self.pareto}

    def state_counts(self) -> Counter[str]:
        return Counter(r.state for r in self.rows)

    def task_metrics(self) -> list[str]:
        """Per-task columns: the non-cost objective metrics, shown per task when the objective averages tasks."""
        if len(self.tasks) < 2:
            return []
        return [m for m in self.metrics if not m.startswith("cost/")]


def _sign(direction: str) -> float:
    return -1.0 if direction == "maximize" else 1.0  # → lower is better


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (at least as good on every objective and strictly
    better on one), in input order. Equal points do not dominate each other: both stay on the front."""
    signs = [_sign(d) for d in directions]
    low = [[s * v for s, v in zip(signs, p)] for p in points]
    return [i for i, p in enumerate(low)
            if not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for q in low)]


def _target(index: int, sign: float) -> Callable[[FrozenTrial], float]:
    """Objective `index` as PED-ANOVA wants it: lower is better."""

    def target(trial: FrozenTrial) -> float:
        return sign * float(trial.values[index])

    return target


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def param_order(meta: Mapping[str, Any], rows: Sequence[TrialRow]) -> list[str]:
    order = [str(p["path"]) for p in meta.get("space") or []]
    for row in rows:
        order += [k for k in row.params if k not in order]
    return order


def compute_importance(rows: Sequence[TrialRow], directions: Sequence[str], metrics: Sequence[str],
                       params: Sequence[str]) -> Importance:
    complete = [r for r in rows if r.complete]
    n = len(complete)

    def none(message: str, notes: list[str] | None = None) -> Importance:
        return Importance({}, message, notes or [], None, n)

    if n < MIN_IMPORTANCE_TRIALS:
        return none(f"importance needs ≥ {MIN_IMPORTANCE_TRIALS} complete trials; this study has {n}.")
    notes, varying = [], []
    for p in params:
        seen = {_key(r.params[p]) for r in complete if p in r.params}
        if len(seen) >= 2:
            varying.append(p)
        elif seen:
            notes.append(f"`{p}` took one value in every complete trial: no importance can be assessed.")
    if not varying:
        return none("importance needs a parameter that takes ≥ 2 values across the complete trials.", notes)
    if any(p not in r.distributions for r in complete for p in r.params):
        return none("importance needs each parameter's Optuna distribution, which these trials lack.", notes)
    quantile = min(0.5, max(0.1, TOP_TRIALS_WANTED / n))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" lines
    try:
        study = optuna.create_study(directions=["minimize"] * len(metrics))  # each target below: lower is better
        for r in complete:
            study.add_trial(optuna.trial.create_trial(params=r.params, distributions=r.distributions,
                                                      values=r.values))
        values: dict[str, list[float | None]] = {p: [] for p in varying}
        for i, (metric, direction) in enumerate(zip(metrics, directions)):
            if len({r.values[i] for r in complete if r.values is not None}) < 2:
                notes.append(f"{metric} is the same in every complete trial: no importance for it.")
                for p in varying:
                    values[p].append(None)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "lower target is better" (we pass it so) and experimental flags
                got = get_param_importances(
                    study, params=varying, evaluator=PedAnovaImportanceEvaluator(target_quantile=quantile),
                    target=_target(i, _sign(direction)))
            for p in varying:
                values[p].append(float(got.get(p, 0.0)))
    except (ValueError, RuntimeError, TypeError) as e:
        return none(f"Optuna could not compute importance: {e}", notes)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if all(v is None for vs in values.values() for v in vs):
        return none("importance needs objective values that differ between complete trials.", notes)
    # Most important first, by the first objective that has an importance; ties by name.
    order = sorted(varying, key=lambda p: (-next(v for v in values[p] if v is not None), p))
    return Importance({p: values[p] for p in order}, None, notes, quantile, n)


def compute_sweep(meta: Mapping[str, Any], rows: Sequence[TrialRow], importance: bool = True) -> SweepData:
    objectives = list(meta.get("objectives") or [])
    if not objectives:
        raise ValueError("sweep meta has no objectives: expected [{metric, direction}, ...]")
    metrics = [str(o["metric"]) for o in objectives]
    directions = [str(o.get("direction", "maximize")) for o in objectives]
    bad = [d for d in directions if d not in ("maximize", "minimize")]
    if bad:
        raise ValueError(f"objective direction must be maximize or minimize, got {bad[0]!r}")
    complete = [r for r in rows if r.complete]
    wrong = [r.number for r in complete if r.values is None or len(r.values) != len(metrics)]
    if wrong:
        raise ValueError(f"trial {wrong[0]} has a different number of values than the {len(metrics)} objective(s)")
    signs = [_sign(d) for d in directions]
    ranked = sorted(complete, key=lambda r: ([s * v for s, v in zip(signs, r.values or [])], r.number))
    first = [(r.values or [math.nan])[0] for r in ranked]
    ranks = [int(k or 0) for k in rank(first, higher_is_better=directions[0] == "maximize")]
    front: list[TrialRow] = []
    if len(metrics) > 1:
        keep = set(non_dominated([r.values or [] for r in ranked], directions))
        front = [r for i, r in enumerate(ranked) if i in keep]
    others = sorted((r for r in rows if not r.complete), key=lambda r: r.number)
    params = param_order(meta, rows)
    tasks = [str(t) for t in meta.get("tasks") or []]
    for row in rows:
        tasks += [rec.task for rec in row.records if rec.task not in tasks]
    imp = (compute_importance(rows, directions, metrics, params) if importance
           else Importance({}, "importance not computed", [], None, len(complete)))
    return SweepData(meta, rows, metrics, directions, ranked, ranks, others, front, imp, params, tasks)


def trial_cost(row: TrialRow) -> dict[str, float | None]:
    """Over the trial's runs (one per task): mean params, tokens/s and FLOPs/token, total wall time, max peak
    memory."""
    recs = row.records
    if not recs:
        return {"params": None, "train_tokens_per_s": None, "wall_time_s": None, "peak_mem_mib": None,
                "flops_per_token": None}

    def finite(xs: list[float]) -> list[float]:
        return [x for x in xs if not math.isnan(x)]

    speed = finite([r.cost.train_tokens_per_s for r in recs])
    wall = finite([r.cost.wall_time_s for r in recs])
    mem = finite([r.cost.peak_mem_mib for r in recs])
    flops = [r.cost.flops_per_token for r in recs if r.cost.flops_per_token is not None]
    n_params = sum(r.cost.params for r in recs) / len(recs)
    return {"params": int(n_params) if n_params.is_integer() else n_params,
            "train_tokens_per_s": sum(speed) / len(speed) if speed else None,
            "wall_time_s": sum(wall) if wall else None, "peak_mem_mib": max(mem) if mem else None,
            "flops_per_token": sum(flops) / len(flops) if flops else None}


def task_value(row: TrialRow, task: str, metric: str) -> float | None:
    for rec in row.records:
        if rec.task == task and metric in rec.metrics:
            return float(rec.metrics[metric])
    return None
