"""Lightning callbacks every run gets from `fit`: a progress bar that counts the run's steps, and the tokenizer
saved inside each checkpoint.

- `StepProgressBar`: attnlab runs are step-bounded (`train.max_steps`), but Lightning's bar restarts every epoch
  ("Epoch 0/99 … 60/313") and its ETA is the epoch's. This bar counts optimizer steps of `max_steps` across
  epochs, so tqdm's rate and remaining time are the run's.
- `TokenizerInCheckpoint`: the tokenizer JSON travels in the checkpoint under `TOKENIZER_KEY`, so two
  checkpoints in one folder can no longer overwrite each other's `tokenizer.json` (still written beside a
  saved checkpoint for `task.tokenizer: <dir>`; `train/generation/loader.py` prefers the embedded copy).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from tokenizers import Tokenizer

TOKENIZER_KEY = "attnlab_tokenizer"


class StepProgressBar(TQDMProgressBar):
    def __init__(self, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self._counting = False  # the bar was set up for the whole run

    def on_train_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_start(trainer, *args)
        self._counting = False

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.max_steps is None or trainer.max_steps < 0:  # epoch-bounded: Lightning's own bar is right
            super().on_train_epoch_start(trainer, *args)
            return
        bar = self.train_progress_bar
        if not self._counting:
            bar.reset(total=trainer.max_steps)  # also restarts tqdm's clock: the ETA is the run's
            bar.initial = trainer.global_step  # a resumed run starts where its checkpoint stopped
            bar.n = trainer.global_step
            self._counting = True
        bar.set_description(f"step (epoch {trainer.current_epoch})")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self._counting:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        step = trainer.global_step  # optimizer steps: repeats under gradient accumulation, never overshoots
        bar = self.train_progress_bar
        if self._should_update(step, bar.total) and bar.n != step:
            bar.n = step
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))


class TokenizerInCheckpoint(pl.Callback):
    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer_json = tokenizer.to_str()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[TOKENIZER_KEY] = self.tokenizer_json



def checkpoint_tokenizer(checkpoint: dict[str, Any]) -> Tokenizer | None:
    """The tokenizer saved inside a checkpoint, or None for a checkpoint older than this key."""
    text = checkpoint.get(TOKENIZER_KEY)
    return Tokenizer.from_str(text) if isinstance(text, str) else None
