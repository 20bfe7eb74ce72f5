"""`attnlab sweep status`: trial counts by state, the best trials (or the Pareto front)."""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState


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
    failed = [t for t in trials if t.state == TrialState.FAIL and "fail_reason" in t.user_attrs]
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
    for t in failed[:top]:
        lines.append(f"  failed #{t.number}: {t.user_attrs['fail_reason'][:160]}")
    return "\n".join(lines)
