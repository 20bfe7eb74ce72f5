"""Our own small pruning callback (plain `pytorch_lightning`, not optuna-integration, which
imports the separate `lightning.pytorch` hierarchy): report the monitored metric after each
validation, raise `optuna.TrialPruned` when the pruner says so."""

from __future__ import annotations

import math

import optuna
import pytorch_lightning as pl


class PruningCallback(pl.Callback):
    def __init__(self, trial: optuna.Trial, monitor: str, step_offset: int = 0) -> None:
        self.trial = trial
        self.monitor = monitor
        self.step_offset = step_offset  # multi-task trials report on one continuing step axis

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        step = self.step_offset + trainer.global_step
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"{self.monitor} is {value} at step {step}")
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_step", step)
            raise optuna.TrialPruned(f"pruned at step {step}: {self.monitor}={value:.4f}")
