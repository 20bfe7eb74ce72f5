"""Sweep files (`sweeps/*.yaml`): one Optuna study each. Validated before the first trial.

```yaml
name: attention-zoo-sst2
base: base/sst2.yaml                 # run config, relative to this file
tasks: [glue/sst2]                   # optional; several tasks → objective averaged over them
set: {train.max_steps: 300}          # fixed overrides on the base
objectives: [{metric: val/accuracy, direction: maximize}, {metric: cost/params, direction: minimize}]
space: {...}                         # see space.py
sampler: {name: tpe, seed: 0}        # tpe | random | grid
pruner: {name: median, n_warmup_steps: 100}   # median | hyperband | none
n_trials: 12
storage: null                        # null → sqlite:///results/sweeps/<name>.db
wandb: {project: attnlab}
heartbeat: {interval_s: 10, grace_s: 60}
```
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab.config import ConfigError, RunConfig, build_run_config, load_yaml
from attnlab.experiments.space import Param, parse_space
from attnlab.paths import check_name

TOP_KEYS = ("name", "base", "tasks", "set", "objectives", "space", "sampler", "pruner", "n_trials", "storage",
            "wandb", "heartbeat", "description")
COST_METRICS = ("cost/params", "cost/train_tokens_per_s", "cost/wall_time_s", "cost/peak_mem_mib")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str = "maximize"


@dataclass(frozen=True)
class SweepConfig:
    name: str
    path: Path
    base: dict[str, Any]
    tasks: tuple[str, ...]
    fixed: dict[str, Any]
    objectives: tuple[Objective, ...]
    params: tuple[Param, ...]
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    n_trials: int = 10
    storage: str | None = None
    wandb: dict[str, Any] = field(default_factory=dict)
    heartbeat_interval_s: int = 10
    heartbeat_grace_s: int = 60

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def run_config(self, values: dict[str, Any], task: str) -> RunConfig:
        return build_run_config(self.base, source=str(self.path), values={**self.fixed, **values, "task.name": task})


def _err(path: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {msg}")


def load_sweep(path: str | Path) -> SweepConfig:
    p = Path(path)
    raw = load_yaml(p)
    for key in raw:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _err(p, str(key), f"unknown key.{hint} Valid: {', '.join(TOP_KEYS)}")
    if "base" not in raw:
        raise _err(p, "base", "missing: name the run config this sweep starts from")
    base_path = (p.parent / str(raw["base"])).resolve()
    base = load_yaml(base_path)
    name = str(raw.get("name") or p.stem)
    try:
        check_name(name, "name")
    except ValueError as e:
        raise _err(p, "name", str(e)) from None
    tasks = raw.get("tasks") or [base.get("task", {}).get("name", "glue/sst2")]
    tasks = tuple([tasks] if isinstance(tasks, str) else tasks)
    objectives = tuple(_objective(p, i, o) for i, o in enumerate(raw.get("objectives") or [{"metric": "val/score"}]))
    try:
        params = tuple(parse_space(raw.get("space"), "space"))
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    sampler = dict(raw.get("sampler") or {"name": "tpe"})
    pruner = dict(raw.get("pruner") or {"name": "none"})
    if sampler.get("name") not in SAMPLERS:
        raise _err(p, "sampler.name", f"must be one of {SAMPLERS}, got {sampler.get('name')!r}")
    if pruner.get("name") not in PRUNERS:
        raise _err(p, "pruner.name", f"must be one of {PRUNERS}, got {pruner.get('name')!r}")
    if pruner["name"] != "none" and len(objectives) > 1:
        raise _err(p, "pruner", "Optuna cannot prune multi-objective studies: use pruner: {name: none}")
    n_trials = raw.get("n_trials", 10)
    if not isinstance(n_trials, int) or n_trials < 1:
        raise _err(p, "n_trials", f"must be a positive integer, got {n_trials!r}")
    hb = raw.get("heartbeat") or {}
    sweep = SweepConfig(name=name, path=p, base=base, tasks=tasks, fixed=dict(raw.get("set") or {}),
                        objectives=objectives, params=params, sampler=sampler, pruner=pruner,
                        n_trials=n_trials, storage=raw.get("storage"), wandb=dict(raw.get("wandb") or {}),
                        heartbeat_interval_s=int(hb.get("interval_s", 10)), heartbeat_grace_s=int(hb.get("grace_s", 60)))
    validate_sweep(sweep)
    if any(param.path == "train.seed" for param in params):
        warnings.warn(f"{p}: space.train.seed: a seed is not a hyperparameter — tuning it selects a lucky seed. "
                      "Replicate seeds instead: write an ablation (rows × tasks × seeds) for the configurations "
                      "you want to compare.", UserWarning, stacklevel=2)
    return sweep


def _objective(p: Path, i: int, raw: Any) -> Objective:
    if isinstance(raw, str):
        raw = {"metric": raw}
    if not isinstance(raw, dict) or "metric" not in raw:
        raise _err(p, f"objectives[{i}]", "expected {metric: ..., direction: maximize|minimize}")
    direction = raw.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise _err(p, f"objectives[{i}].direction", f"must be maximize or minimize, got {direction!r}")
    return Objective(str(raw["metric"]), direction)


def logged_metrics(task: str) -> list[str]:
    """Every metric a run on `task` reports (val/* from the module, cost/* from the runner)."""
    from attnlab.tasks import get_task

    spec = get_task(task)
    if spec.is_lm:
        return ["val/loss", "val/perplexity", "val/accuracy", *COST_METRICS]
    from attnlab.train.classify import val_metric_names

    return [*val_metric_names(spec), *COST_METRICS]


def validate_sweep(s: SweepConfig) -> None:
    """Build the run config for every task and every parameter (at an example value, with its
    conditions satisfied) so a typo fails now, not at trial 37."""
    try:
        for task in s.tasks:
            s.run_config({}, task)
            for param in s.params:
                values = {cond: allowed[0] for cond, allowed in param.when.items()}
                values[param.path] = param.example_value()
                try:
                    s.run_config(values, task)
                except ConfigError as e:
                    raise ConfigError(f"space.{param.path}: {e}") from None
                if param.type == "categorical":
                    for choice in param.choices:
                        try:
                            s.run_config({**values, param.path: choice}, task)
                        except ConfigError as e:
                            raise ConfigError(f"space.{param.path}: choice {choice!r}: {e}") from None
            available = logged_metrics(task)
            for i, o in enumerate(s.objectives):
                if o.metric not in available:
                    close = difflib.get_close_matches(o.metric, available, n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ConfigError(f"objectives[{i}].metric: {task} does not log {o.metric!r}.{hint} "
                                      f"Available: {', '.join(available)}")
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(str(s.path)) else f"{s.path}: {msg}") from None
