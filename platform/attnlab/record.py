"""The trial record: one typed value for "what one training run produced", written by `attnlab run`, stored in
every trial of every study (sweep or grid) and read by every report.

One schema (`SCHEMA_VERSION`), units in the field names, one writer (`write`/`to_dict`) and one reader
(`from_dict`/`read`) that also accepts the records written before the schema had a version (schema 1: sweeps
stored them under `records` as a task → record mapping, reproductions under `record`, memory as `peak_mem_mb`).
This module imports nothing from attnlab, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A stored record is not a valid record; the message names the source and the field."""


@dataclass(frozen=True)
class Cost:
    params: int
    train_tokens_per_s: float
    train_tokens: int
    train_steps: int
    wall_time_s: float
    # Peak memory of this run alone: the increase over the process's memory when the fit started (CPU: resident
    # set size sampled during the fit; GPU: allocated memory since the peak counter was reset). Records without
    # `peak_mem_baseline_mib` (older ones) hold the process's lifetime peak instead.
    peak_mem_mib: float
    peak_mem_baseline_mib: float | None = None  # the process's memory at fit start (MiB)
    flops_per_token: float | None = None  # analytic forward FLOPs per token of the Transformer body


@dataclass(frozen=True)
class Record:
    """One training run. `study`/`trial` are set when it ran as a trial; `row` for a grid (ablation) cell,
    `params` for the values a sweep sampled."""

    name: str
    task: str
    config_hash: str
    config: dict[str, Any]
    metrics: dict[str, float]
    cost: Cost
    seed: int
    attnlab_version: str
    git_commit: str
    device: str
    created: str  # ISO-8601 UTC, seconds
    study: str | None = None
    trial: int | None = None
    row: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    # per-example dev predictions at the final validation (`attnlab.predictions` format; {} when not recorded)
    predictions: dict[str, Any] = field(default_factory=dict)
    # learning curves: {"val/score": [[step, value], ...], "train/loss": [...]} ({} when not recorded)
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    # how it ran (None / empty in records written before these were recorded): what a bit-for-bit rerun needs
    threads: int | None = None  # torch intra-op threads (train.num_threads)
    interop_threads: int | None = None
    deterministic: bool | None = None  # torch deterministic algorithms on (train.deterministic)
    nondeterministic_ops: list[str] = field(default_factory=list)  # ops that had no deterministic kernel
    library_versions: dict[str, str] = field(default_factory=dict)  # python, torch, pytorch_lightning, ...
    git_dirty: bool | None = None  # tracked files differed from `git_commit`
    concurrent_workers: int | None = None  # workers sharing the machine (`--workers K`): throughput is shared
    vocabulary_hash: str | None = None  # fingerprint of the tokenizer's token → id mapping (tasks.tokenizer)
    resumed_from_step: int | None = None  # continued from its checkpoint at this step (a re-queued trial)
    schema: int = SCHEMA_VERSION

    # ---- writing ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_trial(self, study: str, trial: int, row: str | None = None,
                   params: Mapping[str, Any] | None = None) -> Record:
        return dataclasses.replace(self, study=study, trial=trial, row=row,
                                   params=dict(params) if params is not None else self.params)

    def file_name(self) -> str:
        stamp = self.created.replace(":", "").replace("-", "")[:15]
        return f"{self.name}-{self.task.replace('/', '_')}-{self.config_hash}-{stamp}.json"

    def write(self, out_dir: str | Path) -> Path:
        """Write `<out_dir>/<name>-<task>-<hash>-<time>.json` atomically; returns the path."""
        out = Path(out_dir)
        name = self.file_name()
        if Path(name).name != name or name.startswith("."):  # a name is a file name, never a path out of out_dir
            raise RecordError(f"record name {self.name!r}: not a plain file name; it must stay inside {out}")
        out.mkdir(parents=True, exist_ok=True)
        path = out / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
        tmp.replace(path)  # a crash never leaves half a record
        return path

    # ---- reading ------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<record>") -> Record:
        """A stored record (this schema or schema 1) → Record; a clear RecordError otherwise."""
        if not isinstance(data, Mapping):
            raise RecordError(f"{source}: expected a JSON object, got {type(data).__name__}")
        schema = int(data.get("schema", 1))
        if schema > SCHEMA_VERSION:
            raise RecordError(f"{source}: record schema {schema} is newer than this attnlab ({SCHEMA_VERSION}); "
                              "upgrade attnlab to read it")
        raw = dict(data)
        cost = dict(raw.get("cost") or {})
        if "peak_mem_mb" in cost:  # schema 1 wrote MiB under a MB name
            cost["peak_mem_mib"] = cost.pop("peak_mem_mb")
        missing = [k for k in ("task", "metrics") if k not in raw]
        if missing:
            raise RecordError(f"{source}: missing field(s) {', '.join(missing)}")
        try:
            cost_value = Cost(int(cost.get("params", 0)), float(cost.get("train_tokens_per_s", math.nan)),
                              int(cost.get("train_tokens", 0)), int(cost.get("train_steps", 0)),
                              float(cost.get("wall_time_s", math.nan)), float(cost.get("peak_mem_mib", math.nan)),
                              _optional_float(cost.get("peak_mem_baseline_mib")),
                              _optional_float(cost.get("flops_per_token")))
            metrics = {str(k): float(v) for k, v in dict(raw["metrics"]).items()}
        except (TypeError, ValueError) as e:
            raise RecordError(f"{source}: a metric or cost value is not a number ({e})") from None
        known = {f.name for f in dataclasses.fields(cls)}
        rest = {k: v for k, v in raw.items() if k in known and k not in ("cost", "metrics", "schema")}
        rest.setdefault("name", str(rest.get("row") or "run"))
        rest.setdefault("config_hash", "")
        rest.setdefault("config", {})
        rest.setdefault("seed", int(dict(rest["config"]).get("train", {}).get("seed", 0)))
        for key in ("attnlab_version", "git_commit", "device", "created"):
            rest.setdefault(key, "unknown")
        rest["seed"] = int(rest["seed"])
        return cls(metrics=metrics, cost=cost_value, **rest)

    @classmethod
    def read(cls, path: str | Path) -> Record:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RecordError(f"{p}: cannot read a record ({e})") from None
        return cls.from_dict(data, str(p))

    # ---- using --------------------------------------------------------------------------------
    def value(self, metric: str) -> float:
        """`val/accuracy` → a metric; `cost/wall_time_s` → a cost field."""
        section, _, key = metric.partition("/")
        if section == "cost":
            if not hasattr(self.cost, key):
                raise KeyError(f"unknown cost field {key!r}; valid: {', '.join(f.name for f in dataclasses.fields(Cost))}")
            value = getattr(self.cost, key)
            return math.nan if value is None else float(value)
        if metric not in self.metrics:
            raise KeyError(f"{self.task} has no metric {metric!r}; it has: {', '.join(sorted(self.metrics))}")
        return float(self.metrics[metric])

    def summary(self) -> dict[str, Any]:
        """Flat metrics + `cost/<field>`: what a tracker's run summary shows."""
        out: dict[str, Any] = dict(self.metrics)
        out.update({f"cost/{k}": v for k, v in dataclasses.asdict(self.cost).items() if v is not None})
        return out

    def format(self) -> str:
        rows = [(k, f"{v:.4f}") for k, v in sorted(self.metrics.items())]
        c = self.cost
        rows += [("params", f"{c.params:,}"), ("train tokens/s", f"{c.train_tokens_per_s:,.0f}"),
                 ("wall time (s)", f"{c.wall_time_s:.1f}"), ("peak memory (MiB)", f"{c.peak_mem_mib:.0f}")]
        if c.flops_per_token is not None:
            rows.append(("forward FLOPs/token", f"{c.flops_per_token:,.0f}"))
        width = max(len(k) for k, _ in rows)
        head = f"{self.name} on {self.task} (config {self.config_hash})"
        return "\n".join([head, "-" * len(head)] + [f"{k:<{width}}  {v:>12}" for k, v in rows])


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def records_from_trial_attrs(attrs: Mapping[str, Any], source: str = "<trial>") -> list[Record]:
    """The records a trial stored: `records` as a list (schema 2), or schema 1's `records` (task → record,
    sweeps) / `record` (one record, reproductions)."""
    raw = attrs.get("records")
    if raw is None and "record" in attrs:
        raw = [attrs["record"]]
    if isinstance(raw, Mapping):
        raw = list(raw.values())
    return [Record.from_dict(r, f"{source}, record {i}") for i, r in enumerate(raw or [])]


def read_jsonl(path: str | Path) -> list[Record]:
    p = Path(path)
    out = []
    for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecordError(f"{p}, line {number}: not JSON ({e.msg})") from None
        out.append(Record.from_dict(data, f"{p}, line {number}"))
    return out


def write_jsonl(records: list[Record], path: str | Path) -> Path:
    p = Path(path)
    p.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return p
