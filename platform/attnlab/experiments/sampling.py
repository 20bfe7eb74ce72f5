"""Samplers seeded per trial, so workers and reruns never replay each other.

Seeding every worker's sampler with the file's seed makes all workers draw the same sequence (8 trials of a
2-worker random sweep held 6 distinct configurations) and makes a rerun replay trial 0's draw. Here the
sampler is rebuilt before each trial with a seed derived from (file seed, trial number): trial numbers are
unique in a study across workers and machines, so every trial draws from its own stream, and trial n of a
study always draws from the same stream (reproducible, whichever worker runs it).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def derive_seed(seed: int | None, trial_number: int) -> int | None:
    """A 32-bit seed from (file seed, trial number); None (no file seed) stays unseeded."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"attnlab:{seed}:{trial_number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TrialSeededSampler(BaseSampler):
    """Delegates to `make(seed)`, rebuilt before every trial with `derive_seed(seed, trial.number)`."""

    def __init__(self, make: Callable[[int | None], BaseSampler], seed: int | None) -> None:
        self._make, self._seed = make, seed
        self._inner = self._build(seed)

    def _build(self, seed: int | None) -> BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._make(seed)

    @property
    def inner(self) -> BaseSampler:
        return self._inner

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = self._build(derive_seed(self._seed, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def make_sampler(cfg: dict[str, Any], grid: dict[str, list[Any]] | None = None) -> BaseSampler:
    """tpe | random | grid from a sweep file's `sampler:` section, seeded per trial."""
    seed = cfg.get("seed")
    name = cfg.get("name", "tpe")
    opts = {k: v for k, v in cfg.items() if k not in ("name", "seed")}
    if name == "grid":
        assert grid is not None
        return TrialSeededSampler(lambda s: optuna.samplers.GridSampler(grid, seed=s), seed)
    if name == "random":
        return TrialSeededSampler(lambda s: optuna.samplers.RandomSampler(seed=s), seed)
    return TrialSeededSampler(lambda s: optuna.samplers.TPESampler(seed=s, multivariate=True, group=True, **opts),
                              seed)
