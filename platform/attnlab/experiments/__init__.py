"""Experiments: every experiment is an Optuna study, every trial one or more training runs through ONE trial
body (`trial.run_trial`). A sweep samples a search space (`sweep_config`, `sweep`); an ablation is a grid of
rows × tasks × seeds (`grid_config`, `grid`). Knows Optuna; W&B only through the `Tracker` protocol."""

from attnlab.experiments.sweep_config import SweepConfig, load_sweep

__all__ = ["SweepConfig", "load_sweep"]
