"""Resumable runs: a checkpoint every N steps in a run's folder, and where a run found there resumes.

`train.checkpoint_every_n_steps: N` makes `fit(..., checkpoint_dir=D)` save `D/last.ckpt` every N optimizer
steps (atomically: a kill mid-write leaves the previous one) and, when `D/last.ckpt` exists, resume from it:
Lightning restores weights, optimizer, LR schedule and the loop position; attnlab's loaders skip the batches
the run had already consumed in that epoch (same order, see `distributed.StepBatchSampler`), and this
callback restores the random-number state (dropout, MLM masking) at the first resumed step.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

LAST = "last.ckpt"


def rng_state() -> dict[str, Any]:
    numpy_state: Any = np.random.get_state()
    name, keys, pos, has_gauss, cached = numpy_state
    # plain values only: Lightning loads checkpoints with torch.load(weights_only=True)
    state: dict[str, Any] = {"torch": torch.random.get_rng_state(), "python": random.getstate(),
                             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.random.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class PeriodicCheckpoint(pl.Callback):
    """Save `folder/last.ckpt` every `every_n_steps` steps (not after the last: the run is then done)."""

    def __init__(self, folder: str | Path, every_n_steps: int) -> None:
        self.folder, self.every = Path(folder), every_n_steps
        self._pending: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every or step >= trainer.max_steps:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (LAST + ".tmp")
        trainer.save_checkpoint(tmp)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.folder / LAST)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict.get("rng")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        # Restored here, not at load: starting the loader's iterator draws from the global RNG, which the
        # uninterrupted run did at the start of the epoch, long before this step.
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None


def resume_point(folder: str | Path | None, steps_per_epoch: int) -> tuple[Path | None, int, int, int]:
    """(checkpoint to resume from, its global step, its epoch, batches of that epoch already consumed)."""
    if folder is None or not (Path(folder) / LAST).is_file():
        return None, 0, 0, 0
    path = Path(folder) / LAST
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    step, epoch = int(ckpt["global_step"]), int(ckpt["epoch"])
    skip = step - epoch * steps_per_epoch
    return path, step, epoch, skip if 0 < skip < steps_per_epoch else 0
