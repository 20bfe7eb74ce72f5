"""Pieces every attnlab LightningModule shares: the optimizer/schedule, throughput accounting and
the non-finite-loss guard."""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from attnlab.config import TrainConfig


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss; the run (or trial) ends as failed with this reason."""


def check_finite(loss: Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"loss became {loss.item()} at step {step}; lower train.lr, raise train.warmup_ratio, "
            "or use train.precision=32"
        )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """AdamW groups: no weight decay on biases, norms, embeddings-free 1-D params and mixers' scalars."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_linear_decay(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def build_optimizer(model: nn.Module, train: TrainConfig, total_steps: int) -> tuple[
        torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    opt = torch.optim.AdamW(param_groups(model, train.weight_decay), lr=train.lr)
    warmup = math.ceil(train.warmup_ratio * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_linear_decay(s, total_steps, warmup))
    return opt, sched


class Throughput:
    """Counts real (non-padding) training tokens and the wall time spent in training steps."""

    def __init__(self) -> None:
        self.tokens = 0
        self.examples = 0  # training sequences seen (tokens / examples = the mean real length the model trained on)
        self.seconds = 0.0
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self, tokens: int, examples: int = 0) -> None:
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self.tokens += tokens
            self.examples += examples
            self._start = None

    @property
    def tokens_per_example(self) -> float:
        return self.tokens / self.examples if self.examples else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class AttnlabModule(pl.LightningModule):
    """What every attnlab LightningModule shares: throughput accounting and its logging, and the
    AdamW + warm-up/linear-decay optimizer. Subclasses set `model`, `train_cfg`, `total_steps`."""

    model: nn.Module
    train_cfg: TrainConfig
    total_steps: int

    def __init__(self) -> None:
        super().__init__()
        self.throughput = Throughput()
        self.last_val: dict[str, float] = {}
        # learning curves for the record: {"val/score": [[step, value], ...], "train/loss": [...]}
        self.curves: dict[str, list[list[float]]] = {}
        # per-example dev predictions of the latest validation (`attnlab.predictions` format), for the record
        self.predictions: dict[str, Any] = {}

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.throughput.start()
        self._batch_tokens = int(batch["attention_mask"].sum())
        self._batch_examples = int(batch["attention_mask"].shape[0])

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        mask = batch["attention_mask"]
        self.throughput.stop(int(mask.sum()), int(mask.shape[0]))
        if self.global_step % max(1, self.train_cfg.log_every_n_steps) == 0:
            self.log("train/tokens_per_s", self.throughput.tokens_per_s)
            self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        # the record's loss curve: about CURVE_POINTS points whatever the run's length (not tied to logging)
        if self.global_step % max(1, self.total_steps // self.CURVE_POINTS) == 0:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if isinstance(loss, Tensor):
                self.add_curve_point("train/loss", float(loss.detach()))

    CURVE_KEYS = ("val/score", "val/perplexity", "val/loss")
    CURVE_POINTS = 100

    def add_curve_point(self, key: str, value: float) -> None:
        """Append (global step, value) to a curve; a second point at the same step replaces the first (the
        final `trainer.validate` repeats the last in-training validation)."""
        points = self.curves.setdefault(key, [])
        if points and points[-1][0] == self.global_step:
            points.pop()
        if math.isfinite(value):
            points.append([self.global_step, value])

    def note_validation(self, values: dict[str, float]) -> None:
        """Subclasses call this with their validation metrics: keeps the curves of `CURVE_KEYS`."""
        for key in self.CURVE_KEYS:
            if key in values:
                self.add_curve_point(key, float(values[key]))

    def attention_metrics(self) -> dict[str, float]:
        """`attn/attn<i>/<name>` scalars from the attention variants — mixture weights, and the
        NaN-guard count when a variant runs with `nan_guard` on. Every module adds them to its
        validation metrics (hence to the run's record)."""
        transformer = getattr(self.model, "transformer", None)
        if transformer is None:
            return {}
        return {f"attn/{k}": v for k, v in transformer.extra_metrics().items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A resumed run's record counts its tokens and curves from step 0, not from the resume. A callback saving
        # in on_train_batch_end runs before this module's: the step it saves after is not counted yet.
        t = self.throughput
        in_flight = t._start is not None
        tokens = t.tokens + (getattr(self, "_batch_tokens", 0) if in_flight else 0)
        seconds = t.seconds + (time.perf_counter() - t._start if t._start is not None else 0.0)
        examples = t.examples + (getattr(self, "_batch_examples", 0) if in_flight else 0)
        checkpoint["attnlab_progress"] = {"tokens": tokens, "examples": examples, "seconds": seconds,
                                          "curves": self.curves}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        progress = checkpoint.get("attnlab_progress", {})
        self.throughput.tokens = int(progress.get("tokens", 0))
        self.throughput.examples = int(progress.get("examples", 0))
        self.throughput.seconds = float(progress.get("seconds", 0.0))
        self.curves = {k: [list(p) for p in v] for k, v in progress.get("curves", {}).items()}

    def configure_optimizers(self) -> Any:
        opt, sched = build_optimizer(self.model, self.train_cfg, self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
