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
from attnlab.experiments.storage import check_storage_url
from attnlab.paths import check_name

TOP_KEYS = ("name", "base", "tasks", "set", "objectives", "space", "sampler", "pruner", "n_trials", "storage",
            "wandb", "heartbeat", "description")
COST_METRICS = ("cost/params", "cost/train_tokens_per_s", "cost/wall_time_s", "cost/peak_mem_mib")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
# every section is strict: its keys, and for each the type it must have (ints ≥ 0 unless said otherwise)
SAMPLER_KEYS = {"tpe": ("name", "seed", "n_startup_trials", "n_ei_candidates"), "random": ("name", "seed"),
                "grid": ("name", "seed")}
PRUNER_KEYS = {"median": ("name", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
               "hyperband": ("name", "min_resource", "max_resource", "reduction_factor"), "none": ("name",)}
HEARTBEAT_KEYS = ("interval_s", "grace_s")
WANDB_KEYS = ("project", "entity", "dir")


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


def strict_section(path: Path, key: str, raw: Any, valid: tuple[str, ...]) -> dict[str, Any]:
    """A mapping section whose keys must all be in `valid` (did-you-mean on a typo)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(path, key, f"expected a mapping with keys {', '.join(valid)}, got {raw!r}")
    for k in raw:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _err(path, f"{key}.{k}", f"unknown key.{hint} Valid: {', '.join(valid)}")
    return dict(raw)


def int_field(path: Path, key: str, value: Any, low: int, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _err(path, key, f"must be an integer >= {low}{what}, got {value!r}")
    return value


def _sampler(p: Path, raw: Any) -> dict[str, Any]:
    raw = raw if raw is not None else {"name": "tpe"}
    name = raw.get("name", "tpe") if isinstance(raw, dict) else None
    if name not in SAMPLERS:
        raise _err(p, "sampler.name", f"must be one of {SAMPLERS}, got {name!r}")
    cfg = strict_section(p, "sampler", raw, SAMPLER_KEYS[name])
    cfg["name"] = name
    if cfg.get("seed") is not None:
        int_field(p, "sampler.seed", cfg["seed"], 0)
    for key in ("n_startup_trials", "n_ei_candidates"):
        if key in cfg:
            int_field(p, f"sampler.{key}", cfg[key], 1)
    return cfg


def _pruner(p: Path, raw: Any) -> dict[str, Any]:
    raw = raw if raw is not None else {"name": "none"}
    name = raw.get("name", "none") if isinstance(raw, dict) else None
    if name not in PRUNERS:
        raise _err(p, "pruner.name", f"must be one of {PRUNERS}, got {name!r}")
    cfg = strict_section(p, "pruner", raw, PRUNER_KEYS[name])
    cfg["name"] = name
    for key, value in cfg.items():
        if key == "name" or (key == "max_resource" and value == "auto"):
            continue
        low = 2 if key == "reduction_factor" else 1 if key in ("interval_steps", "min_resource", "max_resource") else 0
        int_field(p, f"pruner.{key}", value, low, " (or 'auto')" if key == "max_resource" else "")
    return cfg


def _heartbeat(p: Path, raw: Any) -> tuple[int, int]:
    hb = strict_section(p, "heartbeat", raw, HEARTBEAT_KEYS)
    interval = int_field(p, "heartbeat.interval_s", hb.get("interval_s", 10), 1)
    grace = int_field(p, "heartbeat.grace_s", hb.get("grace_s", 60), 1)
    if grace <= interval:
        raise _err(p, "heartbeat.grace_s", f"must exceed heartbeat.interval_s ({interval}): a live worker beats "
                   "every interval_s, so a shorter grace declares it dead")
    return interval, grace


def _tasks(p: Path, raw: Any, base: dict[str, Any]) -> tuple[str, ...]:
    if raw is None:
        task = base.get("task", {}).get("name", "glue/sst2") if isinstance(base.get("task"), dict) else "glue/sst2"
        return (str(task),)
    tasks = [raw] if isinstance(raw, str) else raw
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise _err(p, "tasks", f"expected a task name or a list of task names (e.g. [glue/sst2]), got {raw!r}")
    return tuple(tasks)


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
    tasks = _tasks(p, raw.get("tasks"), base)
    raw_objectives = raw.get("objectives") or [{"metric": "val/score"}]
    if not isinstance(raw_objectives, list):
        raise _err(p, "objectives", f"expected a list like [{{metric: val/accuracy}}], got {raw_objectives!r}")
    objectives = tuple(_objective(p, i, o) for i, o in enumerate(raw_objectives))
    try:
        params = tuple(parse_space(raw.get("space"), "space"))
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    sampler = _sampler(p, raw.get("sampler"))
    pruner = _pruner(p, raw.get("pruner"))
    if pruner["name"] != "none" and len(objectives) > 1:
        raise _err(p, "pruner", "Optuna cannot prune multi-objective studies: use pruner: {name: none}")
    n_trials = int_field(p, "n_trials", raw.get("n_trials", 10), 1)
    interval, grace = _heartbeat(p, raw.get("heartbeat"))
    storage = raw.get("storage")
    if storage is not None:
        check_storage_url(storage, f"{p}: storage")
    fixed = raw.get("set") or {}
    if not isinstance(fixed, dict):
        raise _err(p, "set", f"expected a mapping of dotted keys to values, got {fixed!r}")
    sweep = SweepConfig(name=name, path=p, base=base, tasks=tasks, fixed=dict(fixed),
                        objectives=objectives, params=params, sampler=sampler, pruner=pruner,
                        n_trials=n_trials, storage=storage, wandb=strict_section(p, "wandb", raw.get("wandb"), WANDB_KEYS),
                        heartbeat_interval_s=interval, heartbeat_grace_s=grace)
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
                for candidate in param.candidates():  # every value the sampler may draw must be valid
                    try:
                        s.run_config({**values, param.path: candidate}, task)
                    except ConfigError as e:
                        what = "choice" if param.type == "categorical" else "value"
                        raise ConfigError(f"space.{param.path}: {what} {candidate!r} (in the range) is invalid: "
                                          f"{e}") from None
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
