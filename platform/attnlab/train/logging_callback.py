"""Logging a training run's metrics into a tracked run (`attnlab.tracking.Run`, W&B): a Lightning callback that
knows only the `LoggedRun` protocol, so the training layer never imports wandb."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pytorch_lightning as pl


class LoggedRun(Protocol):
    log_every_n_steps: int

    @property
    def active(self) -> bool: ...

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...


def _scalars(metrics: Mapping[str, Any], prefixes: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not key.startswith(prefixes):
            continue
        if hasattr(value, "numel"):  # a tensor: only single values are scalars
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


class RunLoggingCallback(pl.Callback):
    """Logs `trainer.callback_metrics` to a tracked run: "train/*" every `log_every_n_steps` optimizer
    steps (and at the end of training), "val/*" and "attn/*" after each validation, all at
    `step=trainer.global_step`, on rank 0 only."""

    def __init__(self, run: LoggedRun, log_every_n_steps: int | None = None,
                 train_prefixes: tuple[str, ...] = ("train/",),
                 eval_prefixes: tuple[str, ...] = ("val/", "attn/")) -> None:
        super().__init__()
        self.run = run
        self.log_every_n_steps = log_every_n_steps or run.log_every_n_steps
        self.train_prefixes = train_prefixes
        self.eval_prefixes = eval_prefixes
        self._last_train_step = -1

    def _log(self, trainer: pl.Trainer, prefixes: tuple[str, ...]) -> None:
        metrics = _scalars(trainer.callback_metrics, prefixes)
        if metrics:
            self.run.log(metrics, step=trainer.global_step)

    def _log_train(self, trainer: pl.Trainer) -> None:
        self._last_train_step = trainer.global_step
        self._log(trainer, self.train_prefixes)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step  # optimizer steps so far; repeats under gradient accumulation
        if (self.run.active and trainer.is_global_zero and step > 0 and step != self._last_train_step
                and step % self.log_every_n_steps == 0):
            self._log_train(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs shorter than log_every_n_steps still get their final training metrics.
        if self.run.active and trainer.is_global_zero and trainer.global_step != self._last_train_step:
            self._log_train(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.run.active and trainer.is_global_zero and not trainer.sanity_checking:
            self._log(trainer, self.eval_prefixes)
