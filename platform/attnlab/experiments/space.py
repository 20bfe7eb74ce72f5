"""Search spaces: YAML parameter definitions over dotted config paths → `trial.suggest_*`.

```yaml
space:
  model.attention.kind: {type: categorical, choices: [dot, linear, synthesizer_dense]}
  train.lr: {type: float, low: 1e-4, high: 3e-3, log: true}
  model.n_layers: {type: int, low: 1, high: 4}
  model.attention.dense_hidden:            # conditional: only sampled when the condition holds
    {type: int, low: 16, high: 128, log: true, when: {model.attention.kind: synthesizer_dense}}
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna

from attnlab.config import ConfigError

PARAM_TYPES = ("categorical", "int", "float")
PARAM_KEYS = {"type", "choices", "low", "high", "step", "log", "when"}


@dataclass(frozen=True)
class Param:
    path: str
    type: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def example_value(self) -> Any:
        if self.type == "categorical":
            return self.choices[0]
        return int(self.low) if self.type == "int" else float(self.low)

    def candidates(self, limit: int = 64) -> list[Any]:
        """Values to validate against the run config: every choice, every int of a range up to `limit` values
        (else both ends and `limit` evenly spaced ones), both ends of a float range."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "float":
            return [float(self.low), float(self.high)]
        step = int(self.step or 1)
        values = list(range(int(self.low), int(self.high) + 1, step))
        if len(values) > limit:
            stride = len(values) / limit
            values = sorted({values[int(i * stride)] for i in range(limit)} | {values[-1]})
        return values

    def active(self, values: dict[str, Any]) -> bool:
        return all(values.get(path) in allowed for path, allowed in self.when.items())

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.path, self.low, self.high, step=self.step, log=self.log)


def parse_param(path: str, raw: Any, where: str) -> Param:
    key = f"{where}.{path}"
    if not isinstance(raw, dict):
        if isinstance(raw, list):  # shorthand: a list is a categorical choice
            raw = {"type": "categorical", "choices": raw}
        else:
            raise ConfigError(f"{key}: expected a mapping like {{type: float, low: ..., high: ...}}")
    unknown = set(raw) - PARAM_KEYS
    if unknown:
        raise ConfigError(f"{key}: unknown field(s) {sorted(unknown)}; valid: {sorted(PARAM_KEYS)}")
    kind = raw.get("type", "categorical" if "choices" in raw else None)
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{key}.type: must be one of {PARAM_TYPES}, got {kind!r}")
    when = {str(p): tuple(v) if isinstance(v, list) else (v,) for p, v in (raw.get("when") or {}).items()}
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{key}.choices: a categorical parameter needs a non-empty list of choices")
        return Param(path, kind, tuple(choices), when=when)
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except KeyError as e:
        raise ConfigError(f"{key}: a {kind} parameter needs 'low' and 'high' (missing {e})") from None
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: 'low' and 'high' must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low <= high:
        raise ConfigError(f"{key}: low ({low}) must be <= high ({high}), both finite")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ConfigError(f"{key}: an int parameter needs integer low and high, got low={low}, high={high}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log: must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log-scale parameter needs low > 0")
    step = raw.get("step")
    if step is not None:
        try:
            step = float(step)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}.step: must be a number, got {step!r}") from None
        if not step > 0 or (kind == "int" and step != int(step)):
            raise ConfigError(f"{key}.step: must be a positive {'integer' if kind == 'int' else 'number'}, got {step}")
        if log:
            raise ConfigError(f"{key}: step and log cannot be combined (Optuna samples either on a grid or on a log scale)")
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
            raise ConfigError(f"{key}.step: {step:g} does not divide high - low = {high - low:g}; the range would "
                              f"end at {low + int(n) * step:g}, not {high:g}")
    return Param(path, kind, low=low, high=high, step=step, log=log, when=when)


def parse_space(raw: Any, where: str = "space") -> list[Param]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of dotted config paths to parameter definitions")
    params = [parse_param(str(p), v, where) for p, v in raw.items()]
    paths = {p.path for p in params}
    for p in params:
        for cond in p.when:
            if cond not in paths:
                raise ConfigError(f"{where}.{p.path}.when: condition on {cond!r}, which is not a parameter of this space")
    return params


def suggest_all(params: list[Param], trial: optuna.Trial) -> dict[str, Any]:
    """Sample every active parameter, in file order (conditions must come after what they test)."""
    values: dict[str, Any] = {}
    for p in params:
        if p.active(values):
            values[p.path] = p.suggest(trial)
    return values


def grid_values(params: list[Param]) -> dict[str, list[Any]]:
    """Search space for optuna's GridSampler: categorical parameters only."""
    grid: dict[str, list[Any]] = {}
    for p in params:
        if p.type != "categorical" or p.when:
            raise ConfigError(f"space.{p.path}: the grid sampler needs unconditional categorical parameters")
        grid[p.path] = list(p.choices)
    return grid
