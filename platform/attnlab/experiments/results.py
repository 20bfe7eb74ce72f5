"""A study's trials as plain typed rows (`TrialRow`): what a sweep report reads, from the storage
(`study_trials`) or from an exported `trials.jsonl` (`read_trials_jsonl`), so a report rebuilds without the
database. Each row keeps its parameters' Optuna distributions, so parameter importance can be recomputed
from the exported file alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from attnlab.record import Record, records_from_trial_attrs

ROW_KEYS = ("number", "state", "params", "distributions", "values", "records", "fail_reason", "duration_s")


@dataclass(frozen=True)
class TrialRow:
    """One trial: `state` is an Optuna state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING); `values` are the
    objective values of a COMPLETE trial (None otherwise); `fail_reason` says why a trial did not complete."""

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None
    records: list[Record]
    fail_reason: str | None
    duration_s: float | None
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.state == TrialState.COMPLETE.name and self.values is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "state": self.state, "params": self.params,
            "distributions": {k: json.loads(distribution_to_json(d)) for k, d in self.distributions.items()},
            "values": self.values, "records": [r.to_dict() for r in self.records],
            "fail_reason": self.fail_reason, "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<trial>") -> TrialRow:
        """A dict written by `to_dict` → TrialRow; a ValueError naming `source` and the field otherwise."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        missing = [k for k in ("number", "state", "params") if k not in data]
        if missing:
            raise ValueError(f"{source}: missing field(s) {', '.join(missing)}; a trial row has {', '.join(ROW_KEYS)}")
        if data["state"] not in TrialState.__members__:
            raise ValueError(f"{source}: state {data['state']!r} is not one of {', '.join(TrialState.__members__)}")
        try:
            distributions = {str(k): json_to_distribution(json.dumps(v))
                             for k, v in dict(data.get("distributions") or {}).items()}
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{source}: distributions: not an Optuna distribution ({e})") from None
        values = data.get("values")
        records = [Record.from_dict(r, f"{source}, record {i}") for i, r in enumerate(data.get("records") or [])]
        duration = data.get("duration_s")
        return cls(number=int(data["number"]), state=str(data["state"]), params=dict(data["params"]),
                   values=None if values is None else [float(v) for v in values], records=records,
                   fail_reason=data.get("fail_reason"), duration_s=None if duration is None else float(duration),
                   distributions=distributions)


def _reason(trial: FrozenTrial, objective: str | None) -> str | None:
    """Why a trial did not complete, in words a reader can act on."""
    state, attrs = trial.state, trial.user_attrs
    if state == TrialState.COMPLETE:
        return None
    if state == TrialState.PRUNED:
        if not trial.intermediate_values:
            return "pruned before reporting a value"
        step = max(trial.intermediate_values)
        return f"pruned at step {step} ({objective or 'objective'} = {trial.intermediate_values[step]:.4g})"
    if state == TrialState.FAIL:
        if "fail_reason" in attrs:
            task = attrs.get("failed_task")
            return str(attrs["fail_reason"]) + (f" (task {task})" if task else "")
        return "no reason recorded: the worker died (heartbeat lost) or raised an unexpected error; see its log"
    if state == TrialState.RUNNING:
        return "still running (or its worker died and the heartbeat check has not marked it yet)"
    return "queued, not started"


def study_trials(study: optuna.Study) -> list[TrialRow]:
    """Every trial of `study` (any state), in trial-number order, with the records it stored."""
    objectives = study.user_attrs.get("objectives") or []
    first = str(objectives[0]) if objectives else None
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        complete = t.state == TrialState.COMPLETE and t.values is not None
        rows.append(TrialRow(
            number=t.number, state=t.state.name, params=dict(t.params),
            values=[float(v) for v in t.values] if complete else None,
            records=records_from_trial_attrs(t.user_attrs, f"study {study.study_name}, trial {t.number}"),
            fail_reason=_reason(t, first),
            duration_s=t.duration.total_seconds() if t.duration is not None else None,
            distributions=dict(t.distributions)))
    return rows


def write_trials_jsonl(rows: Sequence[TrialRow], path: str | Path) -> Path:
    """One trial per line, records as `Record.to_dict` writes them; `read_trials_jsonl` reads it back."""
    p = Path(path)
    p.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def read_trials_jsonl(path: str | Path) -> list[TrialRow]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: cannot read trials ({e})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}, line {number}: not JSON ({e.msg})") from None
        rows.append(TrialRow.from_dict(data, f"{p}, line {number}"))  # RecordError / ValueError name the line
    return rows
