"""Sweeps: every experiment is an Optuna study, every trial one training run (knows Optuna)."""

from attnlab.sweep.spec import SweepConfig, load_sweep

__all__ = ["SweepConfig", "load_sweep"]
