"""What a preset can test: a claim's preconditions (`requires:` in the ablation file) checked on the measured
diagnostics of the records, task by task.

A precondition names a measure (a record metric key, `*` glob allowed: `attn/*/random/rel_change` covers every
layer), a row (default: the claim's row), min and/or max, and why. Per task it is *met* / *not met* on the mean
over the row's records (each record: the mean of its matching keys; records without one do not count), or *not
measured* when no record has the measure (older records). On a task where a precondition is not met the claim's
verdict is "untestable here"; not measured changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attnlab.report.grid import Grid
from attnlab.tasks import get_task

UNTESTABLE = "untestable here"
MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"


def claim_tasks(grid: Grid, claim: Mapping[str, Any]) -> list[str]:
    """The tasks a claim's preconditions are checked on: its own task, or every task of the grid."""
    return [get_task(claim["task"]).name] if claim.get("task") else list(grid.tasks)


def within(value: float, req: Mapping[str, Any]) -> bool:
    return (req.get("min") is None or value >= float(req["min"])) and (
        req.get("max") is None or value <= float(req["max"]))


def check_requirements(grid: Grid, claim: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per (precondition, task): row, measure, min, max, why, task, value, n, status."""
    out = []
    for req in claim.get("requires") or []:
        row = str(req.get("row") or claim["row"])
        for task in claim_tasks(grid, claim):
            value, n = grid.measure(row, task, str(req["measure"]))
            status = NOT_MEASURED if value is None else (MET if within(value, req) else NOT_MET)
            out.append({"task": task, "row": row, "measure": str(req["measure"]), "min": req.get("min"),
                        "max": req.get("max"), "why": str(req.get("why") or ""), "value": value, "n": n,
                        "status": status})
    return out


def task_testable(checks: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """{task: "no" (a precondition not met) / "unchecked" (one not measured) / "yes"} over the checked tasks."""
    out: dict[str, str] = {}
    for check in checks:
        task, now = check["task"], out.get(check["task"], "yes")
        if check["status"] == NOT_MET or now == "no":
            out[task] = "no"
        elif check["status"] == NOT_MEASURED or now == "unchecked":
            out[task] = "unchecked"
        else:
            out[task] = "yes"
    return out


def overall_testable(judged: Sequence[str], by_task: Mapping[str, str]) -> str:
    """"no" when a precondition is not met on every task the claim is judged on; "partly" when on some;
    "unchecked" when one is not measured; else "yes"."""
    states = [by_task.get(t, "yes") for t in judged]
    if states and all(s == "no" for s in states):
        return "no"
    if "no" in states:
        return "partly"
    return "unchecked" if "unchecked" in states else "yes"
