"""Text of a sweep report: the raw leaderboard table (CSV, a W&B Table) and the formatted tables, header lines
and notes that the Markdown and HTML renderers share, so both say exactly the same thing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from attnlab.experiments.results import TrialRow
from attnlab.report import provenance
from attnlab.report.sweep_data import SweepData, task_value, trial_cost
from attnlab.report.tables import Table, num, thousands

COST_COLUMNS = ("params", "train_tokens_per_s", "wall_time_s", "peak_mem_mib", "flops_per_token")
NOTHING_HAND_TYPED = ("Every number in this report is computed by `attnlab.report` from the exported trials "
                      "(trials.jsonl, one line per Optuna trial with its records); nothing is hand-typed.")


def _categorical(data: SweepData, path: str) -> bool:
    dists = [r.distributions[path] for r in data.rows if path in r.distributions]
    return bool(dists) and type(dists[0]).__name__ == "CategoricalDistribution"


def param_cell(value: Any, categorical: bool) -> Any:
    """A parameter value for a table cell: categorical choices as text (`null`, `32`, `dot`) so a column
    keeps one type; numbers stay numbers."""
    if categorical:
        return value if isinstance(value, str) else json.dumps(value)
    return value


def raw_table(data: SweepData) -> tuple[list[str], list[list[Any]]]:
    """Every trial, best complete trial first, then the rest by number; numbers at full precision,
    None where undefined (not sampled, not complete)."""
    columns = ["rank", "trial", "state", *(["pareto"] if data.multi else []), *data.params, *data.metrics]
    columns += [f"{t} {m}" for t in data.tasks for m in data.task_metrics()]
    columns += [*COST_COLUMNS, "duration_s", "reason"]
    cat = {p: _categorical(data, p) for p in data.params}
    front = data.pareto_numbers
    body: list[list[Any]] = []
    for position, row in enumerate([*data.ranked, *data.others]):
        done = position < len(data.ranked)
        line: list[Any] = [data.ranks[position] if done else None, row.number, row.state]
        if data.multi:
            line.append(int(row.number in front) if done else None)
        line += [param_cell(row.params[p], cat[p]) if p in row.params else None for p in data.params]
        line += list(row.values or []) if done else [None] * len(data.metrics)
        line += [task_value(row, t, m) for t in data.tasks for m in data.task_metrics()]
        cost = trial_cost(row)
        line += [cost[c] for c in COST_COLUMNS]
        body.append([*line, row.duration_s, row.fail_reason])
    return columns, body


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """`model.attention.kind` → `kind`, unless two parameters would share the short name."""
    short = {p: p.rsplit(".", 1)[-1] for p in paths}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {p: (p if s in clash else s) for p, s in short.items()}


def fmt_param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return value if isinstance(value, str) else json.dumps(value)


def fmt_metric(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric.startswith("cost/") and metric != "cost/wall_time_s":
        return thousands(value)
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def objective_header(metric: str, direction: str) -> str:
    return f"{metric} {'↑' if direction == 'maximize' else '↓'}"


def _params_text(row: TrialRow, names: Mapping[str, str]) -> str:
    return ", ".join(f"{names.get(k, k)}={fmt_param(v)}" for k, v in row.params.items()) or "—"


def leaderboard_md_table(data: SweepData) -> Table:
    names = short_names(data.params)
    header = ["Rank", "Trial", *(["Pareto"] if data.multi else []), *(names[p] for p in data.params)]
    header += [objective_header(m, d) for m, d in zip(data.metrics, data.directions)]
    header += [f"{t} {m}" for t in data.tasks for m in data.task_metrics()]
    header += ["Params", "Train tok/s", "FLOPs/token (fwd)", "Wall time (s)", "Peak mem (MiB)"]
    front = data.pareto_numbers
    body = []
    for rank, row in zip(data.ranks, data.ranked):
        line = [str(rank), f"#{row.number}", *(["★" if row.number in front else ""] if data.multi else [])]
        line += [fmt_param(row.params[p]) if p in row.params else "—" for p in data.params]
        line += [fmt_metric(m, v) for m, v in zip(data.metrics, row.values or [])]
        line += [fmt_metric(m, task_value(row, t, m)) for t in data.tasks for m in data.task_metrics()]
        cost = trial_cost(row)
        plain = [r.to_dict() for r in row.records]
        shared = f" {provenance.SHARED_MARK}" if provenance.shared_throughput(plain) else ""
        odd = f" {provenance.DEVIATES_MARK}" if provenance.deviates(plain, data_records(data)) else ""
        line[1] += odd
        line += [thousands(cost["params"]), thousands(cost["train_tokens_per_s"]) + shared,
                 thousands(cost["flops_per_token"]), num(cost["wall_time_s"], 1), thousands(cost["peak_mem_mib"])]
        body.append(line)
    return header, body


def pareto_md_table(data: SweepData) -> Table:
    names = short_names(data.params)
    header = ["Trial", *(objective_header(m, d) for m, d in zip(data.metrics, data.directions)), "Parameters"]
    body = [[f"#{r.number}", *(fmt_metric(m, v) for m, v in zip(data.metrics, r.values or [])),
             _params_text(r, names)] for r in data.pareto]
    return header, body


def importance_md_table(data: SweepData) -> Table:
    header = ["Parameter", *(f"importance for {m}" for m in data.metrics)]
    body = [[p, *(num(v) for v in values)] for p, values in data.importance.values.items()]
    return header, body


def others_md_table(data: SweepData) -> Table:
    names = short_names(data.params)
    header = ["Trial", "State", "Parameters", "Reason"]
    body = [[f"#{r.number}", r.state, _params_text(r, names), r.fail_reason or "—"] for r in data.others]
    return header, body


def space_md_table(meta: Mapping[str, Any]) -> Table:
    header = ["Parameter", "Type", "Values", "Sampled when"]
    body = []
    for p in meta.get("space") or []:
        if p["type"] == "categorical":
            values = ", ".join(fmt_param(c) for c in p["choices"])
        else:
            values = f"[{p['low']:g}, {p['high']:g}]" + (" log" if p.get("log") else "")
            values += f" step {p['step']:g}" if p.get("step") is not None else ""
        when = "; ".join(f"{k} ∈ {{{', '.join(fmt_param(v) for v in vs)}}}" for k, vs in (p.get("when") or {}).items())
        body.append([str(p["path"]), str(p["type"]), values, when or "always"])
    return header, body


def header_lines(data: SweepData) -> list[tuple[str, str]]:
    meta = data.meta
    counts = data.state_counts()
    states = ", ".join(f"{s} {counts[s]}" for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING") if counts[s])
    objectives = ", ".join(f"{m} ({d})" for m, d in zip(data.metrics, data.directions))
    if len(data.tasks) > 1:
        objectives += "; each the mean over the tasks"

    def spec(cfg: Any) -> str:
        cfg = dict(cfg or {})
        rest = ", ".join(f"{k}={v}" for k, v in cfg.items() if k != "name")
        return f"{cfg.get('name', '—')}" + (f" ({rest})" if rest else "")

    return [
        ("Description", str(meta.get("description") or "—")),
        ("Sweep file", str(meta.get("sweep_file", "—"))),
        ("Produced by", str(meta.get("command", "—"))),
        *([("Report rebuilt by", str(meta["report_command"]))] if meta.get("report_command") else []),
        ("Objectives", objectives),
        ("Tasks", ", ".join(data.tasks) or "—"),
        ("Sampler", spec(meta.get("sampler"))),
        ("Pruner", spec(meta.get("pruner"))),
        ("Trials", f"{len(data.rows)} of {meta.get('n_trials', '?')} planned" + (f": {states}" if states else "")),
        ("attnlab version", str(meta.get("attnlab_version", "—"))),
        ("Report built at commit", str(meta.get("git_commit", "—"))),
        ("Date", str(meta.get("date", "—"))),
        ("Regenerate", str(meta.get("regenerate", "—"))),
        *provenance.header_lines(data_records(data)),
    ]


def data_records(data: SweepData) -> list[dict[str, Any]]:
    """Every record of every trial, as plain dicts (what `provenance` reads)."""
    return [r.to_dict() for row in data.rows for r in row.records]


CODE_LABELS = frozenset({"Produced by", "Report rebuilt by", "Regenerate", "Report built at commit", "Sweep file"})


def leaderboard_notes(data: SweepData) -> list[str]:
    first = f"{data.metrics[0]} ({data.directions[0]})"
    notes = [f"Complete trials ranked by {first}; ties share a rank and are ordered by the next objective, "
             "then by trial number. ↑: higher is better, ↓: lower is better."]
    if data.multi:
        notes.append("★ Pareto: no other complete trial is at least as good on every objective and better on one.")
    if len(data.tasks) > 1:
        notes.append("Each objective is the mean over the tasks; the per-task columns show each task's value.")
    if any(p not in r.params for r in data.ranked for p in data.params):
        notes.append("— in a parameter column: not sampled in that trial (a conditional parameter).")
    notes.append("Params, training tokens/s and FLOPs/token: mean over the trial's runs (one per task); wall time: "
                 "their sum; peak memory: their maximum.")
    notes += [provenance.MEMORY_NOTE, *provenance.notes(data_records(data))]
    return notes


def importance_notes(data: SweepData) -> list[str]:
    imp = data.importance
    if imp.message:
        return [imp.message, *imp.notes]
    q = imp.target_quantile or 0.0
    return [f"Importance: Optuna's PED-ANOVA evaluator (`optuna.importance.get_param_importances`) on the "
            f"{imp.n_trials} complete trials: how much reaching the top {q:.0%} of trials on each objective "
            "depends on the parameter; normalised to sum to 1 per objective. Few trials make it a rough guide.",
            *imp.notes]
