"""Reading-comprehension LightningModules over the shared Transformer:

- `SpanExtractionModule` (CMRC 2018): start/end logits over each window's context tokens (and [CLS],
  the target of windows without the answer), loss = mean of the start and end cross-entropies. At
  validation every window proposes its best valid span (end ≥ start, ≤ `max_answer_len` tokens,
  context tokens only); each question keeps its best-scoring window's span, scored by the official
  CMRC 2018 EM / F1 against all its references.
- `MultipleChoiceModule` (C3): one score per (document, question, choice) sequence, a softmax over the
  question's real choices (padding slots get −inf, so they never win and carry no probability).

Both log `val/<metric>`, `val/score` (`task_score`), `val/loss`, `attn/*`, and copy the data module's
`data/*` counts (answers fixed / dropped, windows) into `last_val`, hence into the run's record.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection

from attnlab.config import ModelConfig, RunConfig, TrainConfig, from_dict, to_dict
from attnlab.model.mrc_heads import MultipleChoiceScorer, SpanExtractor
from attnlab.tasks import get_task
from attnlab.tasks.metrics import build_metrics, task_score
from attnlab.tasks.mrc_data import ReadingDataModule
from attnlab.tasks.span_data import best_spans, span_predictions
from attnlab.train.common import AttnlabModule, check_finite

Batch = dict[str, Tensor]


class _ReadingModule(AttnlabModule):
    model: nn.Module

    def __init__(self, model_cfg: ModelConfig | dict[str, Any], task: str, train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, **extra: Any) -> None:
        super().__init__()
        model_cfg, train_cfg = from_dict(ModelConfig, model_cfg), from_dict(TrainConfig, train_cfg)
        self.save_hyperparameters({"model_cfg": to_dict(model_cfg), "task": task, "train_cfg": to_dict(train_cfg),
                                   "total_steps": total_steps, **extra})
        self.spec = get_task(task)
        self.model_cfg, self.train_cfg, self.total_steps = model_cfg, train_cfg, total_steps
        self.split_names = list(self.spec.val_splits)
        self.val_metrics = nn.ModuleList(build_metrics(self.spec) for _ in self.split_names)
        self.val_losses: list[list[Tensor]] = [[] for _ in self.split_names]

    def metrics_for(self, split_index: int) -> MetricCollection:
        return cast(MetricCollection, self.val_metrics[split_index])

    def loss(self, outputs: Any, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.loss(self(batch), batch)
        check_finite(loss, self.global_step)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def update_split(self, split_index: int) -> None:
        """Feed the split's metrics at epoch end (the span module assembles its predictions here)."""

    def on_validation_epoch_end(self) -> None:
        values: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for i, split in enumerate(self.split_names):
            self.update_split(i)
            computed = {k: float(v) for k, v in self.metrics_for(i).compute().items()}
            self.metrics_for(i).reset()
            suffix = "" if len(self.split_names) == 1 else "_" + split.removeprefix("validation_")
            for k, v in computed.items():
                values[f"val/{k}{suffix}"] = v
                per_metric.setdefault(k, []).append(v)
        losses = [t for split in self.val_losses for t in split]
        values["val/loss"] = float(torch.stack(losses).mean()) if losses else float("nan")
        self.val_losses = [[] for _ in self.split_names]
        values["val/score"] = task_score(self.spec, {k: sum(v) / len(v) for k, v in per_metric.items()})
        values.update(self.attention_metrics())
        self.note_validation(values)
        self.log_dict(values, prog_bar=False, add_dataloader_idx=False)
        dm = self.trainer.datamodule if self._trainer is not None else None  # type: ignore[attr-defined]
        self.last_val = {**values, **getattr(dm, "data_stats", {})}


class SpanExtractionModule(_ReadingModule):
    model: SpanExtractor

    def __init__(self, model_cfg: ModelConfig | dict[str, Any], task: str, train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, max_answer_len: int = 64) -> None:
        super().__init__(model_cfg, task, train_cfg, total_steps, max_answer_len=max_answer_len)
        self.max_answer_len = max_answer_len
        self.model = SpanExtractor(self.model_cfg)
        # per split: (question index, span score, character start, character end), one per window
        self.candidates: list[list[tuple[int, float, int, int]]] = [[] for _ in self.split_names]

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Start and end logits (B, T), −inf outside the context tokens and [CLS] (position 0)."""
        start, end = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        allowed = batch["context_mask"].clone()  # (B, T)
        allowed[:, 0] = True
        return (start.float().masked_fill(~allowed, float("-inf")),
                end.float().masked_fill(~allowed, float("-inf")))

    def loss(self, outputs: tuple[Tensor, Tensor], batch: Batch) -> Tensor:
        start, end = outputs
        return (F.cross_entropy(start, batch["start_positions"]) + F.cross_entropy(end, batch["end_positions"])) / 2

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        start, end = self(batch)
        self.val_losses[dataloader_idx].append(self.loss((start, end), batch).detach())
        score, s, e = best_spans(start, end, batch["context_mask"], self.max_answer_len)  # (B,) each
        rows = torch.arange(len(s), device=s.device)
        char_start = batch["offsets"][rows, s, 0]  # (B,)
        char_end = batch["offsets"][rows, e, 1]  # (B,)
        self.candidates[dataloader_idx] += list(zip(batch["example"].tolist(), score.tolist(), char_start.tolist(),
                                                    char_end.tolist(), strict=True))

    def update_split(self, split_index: int) -> None:
        examples = self.trainer.datamodule.examples[self.split_names[split_index]]  # type: ignore[attr-defined]
        predictions = span_predictions(examples, self.candidates[split_index])
        self.metrics_for(split_index).update(predictions, [e["answers"] for e in examples])
        self.candidates[split_index] = []


class MultipleChoiceModule(_ReadingModule):
    model: MultipleChoiceScorer

    def __init__(self, model_cfg: ModelConfig | dict[str, Any], task: str, train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int) -> None:
        super().__init__(model_cfg, task, train_cfg, total_steps)
        self.model = MultipleChoiceScorer(self.model_cfg)

    def forward(self, batch: Batch) -> Tensor:
        """Choice logits (B, C): each question's real choices, −inf in its padding slots."""
        scores = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])  # (N,)
        mask = batch["choice_mask"]  # (B, C); its True entries in row-major order = the N sequences
        logits = torch.full(mask.shape, float("-inf"), device=scores.device)
        return logits.masked_scatter(mask, scores.float())  # (B, C)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs, batch["labels"])

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits = self(batch)
        self.val_losses[dataloader_idx].append(self.loss(logits, batch).detach())
        self.metrics_for(dataloader_idx).update(logits.argmax(-1), batch["labels"])


READING_OBJECTIVES = ("span_extraction", "multiple_choice")


def build_reading_datamodule(cfg: RunConfig) -> ReadingDataModule:
    """The data module of a reading-comprehension run (`task.objective` auto → the task's kind)."""
    from attnlab.tasks.choice_data import ChoiceDataModule
    from attnlab.tasks.span_data import SpanDataModule

    t, tr = cfg.task, cfg.train
    kw: dict[str, Any] = dict(vocab_size=t.vocab_size, max_length=t.max_length,
                              max_question_length=t.max_question_length, batch_size=tr.batch_size,
                              eval_batch_size=tr.eval_batch_size, max_train_examples=t.max_train_examples,
                              max_eval_examples=t.max_eval_examples, seed=tr.seed, source=t.source,
                              pretrained_dir=t.tokenizer)
    if get_task(t.name).kind == "span_extraction":
        return SpanDataModule(t.name, t.data_root, doc_stride=t.doc_stride, **kw)
    return ChoiceDataModule(t.name, t.data_root, **kw)


def build_reading_module(cfg: RunConfig, model_cfg: ModelConfig, total_steps: int) -> _ReadingModule:
    if get_task(cfg.task.name).kind == "span_extraction":
        return SpanExtractionModule(model_cfg, cfg.task.name, cfg.train, total_steps,
                                    max_answer_len=cfg.task.max_answer_len)
    return MultipleChoiceModule(model_cfg, cfg.task.name, cfg.train, total_steps)
