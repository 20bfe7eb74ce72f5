"""`attnlab sweep status`: trial counts by state, the best trials (or the Pareto front)."""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from attnlab.experiments import recovery


def _fmt_params(t: FrozenTrial) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                     for k, v in t.params.items())


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    return sorted(study.best_trials, key=lambda t: t.number)


def format_status(study: optuna.Study, top: int = 5) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name for t in trials)
    objectives = study.user_attrs.get("objectives") or [f"objective{i}" for i in range(len(study.directions))]
    lines = [f"study {study.study_name}: {len(trials)} trials — "
             + ", ".join(f"{s.name}={counts.get(s.name, 0)}" for s in TrialState)]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    retries = {int(t.user_attrs[recovery.RETRY_OF]): t for t in trials if recovery.RETRY_OF in t.user_attrs}
    stale = recovery.stale_trial_numbers(study)
    if not complete:
        lines.append("no complete trial yet")
    elif len(study.directions) == 1:
        reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
        lines.append(f"best trials by {objectives[0]} ({study.direction.name.lower()}):")
        for t in sorted(complete, key=lambda t: t.value or 0.0, reverse=reverse)[:top]:
            lines.append(f"  #{t.number:<4} {objectives[0]}={t.value:.4f}  {_fmt_params(t)}")
    else:
        lines.append("Pareto front (" + ", ".join(f"{m} {d.name.lower()}" for m, d in zip(objectives, study.directions))
                     + "):")
        for t in pareto_front(study):
            vals = "  ".join(f"{m}={v:.4g}" for m, v in zip(objectives, t.values))
            lines.append(f"  #{t.number:<4} {vals}  {_fmt_params(t)}")
    for t in trials:
        if t.state == TrialState.RUNNING:
            what = f"{recovery.STALE_REASON}: no heartbeat; the next worker re-queues it" if t.number in stale \
                else "running"
            lines.append(f"  #{t.number:<4} {what}  {_fmt_params(t)}")
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    for t in waiting[:top]:
        origin = t.user_attrs.get(recovery.RETRY_OF)
        why = f" (redoes #{origin}: {t.user_attrs.get(recovery.RETRY_REASON)})" if origin is not None else ""
        params = t.params or t.system_attrs.get("fixed_params") or {}
        lines.append(f"  #{t.number:<4} queued{why}  " + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items()))
    if len(waiting) > top:
        lines.append(f"  … and {len(waiting) - top} more queued")
    reasons = {n: r.user_attrs.get(recovery.RETRY_REASON) for n, r in retries.items()}
    for t in failed[-top:]:
        why = recovery.describe(t, reasons) or "failed (no reason recorded)"
        redo = f"; redone as #{retries[t.number].number}" if t.number in retries else ""
        lines.append(f"  failed #{t.number}: {why[:160]}{redo}")
    return "\n".join(lines)
