"""Classification / regression LightningModule for GLUE and CLUE tasks."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection

from attnlab.config import ModelConfig, TrainConfig, from_dict, to_dict
from attnlab.model import SequenceClassifier
from attnlab.predictions import encode
from attnlab.tasks import TaskSpec, get_task
from attnlab.tasks.metrics import build_metrics, task_score
from attnlab.train.common import AttnlabModule, check_finite
from attnlab.train.distributed import reduce_sum


def val_metric_names(spec: TaskSpec) -> list[str]:
    """Keys logged under `val/`: the task's metrics (suffixed by split when it has several) + score."""
    splits = spec.val_splits
    names = []
    for split in splits:
        suffix = "" if len(splits) == 1 else "_" + split.removeprefix("validation_")
        names += [f"val/{m}{suffix}" for m in spec.metrics]
    return [*names, "val/score", "val/loss"]


class ClassifierModule(AttnlabModule):
    model: SequenceClassifier

    def __init__(self, model_cfg: ModelConfig | dict[str, Any], task: str, train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int) -> None:
        super().__init__()
        model_cfg, train_cfg = from_dict(ModelConfig, model_cfg), from_dict(TrainConfig, train_cfg)
        # Plain data in the checkpoint: loads without unpickling attnlab classes.
        self.save_hyperparameters({"model_cfg": to_dict(model_cfg), "task": task, "train_cfg": to_dict(train_cfg),
                                   "total_steps": total_steps})
        self.spec = get_task(task)
        self.train_cfg = train_cfg
        self.total_steps = total_steps
        n_out = 1 if self.spec.is_regression else len(self.spec.labels)
        self.model = SequenceClassifier(model_cfg, n_out)
        self.split_names = list(self.spec.val_splits)
        self.val_metrics = nn.ModuleList(build_metrics(self.spec) for _ in self.split_names)
        self.val_losses: list[list[Tensor]] = [[] for _ in self.split_names]
        # per split: (predicted class ids, labels) of each validation batch, in dev order
        self.val_outputs: list[list[tuple[Tensor, Tensor]]] = [[] for _ in self.split_names]

    def metrics_for(self, split_index: int) -> MetricCollection:
        return cast(MetricCollection, self.val_metrics[split_index])

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        logits = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return logits.squeeze(-1) if self.spec.is_regression else logits

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        if self.spec.is_regression:
            return F.mse_loss(logits.float(), labels.float())
        return F.cross_entropy(logits.float(), labels)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(self(batch), batch["labels"])
        check_finite(loss, self.global_step)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        logits = self(batch)
        n = batch["labels"].new_tensor(len(batch["labels"]), dtype=torch.float)
        # (summed loss, examples): an exact per-example mean, also when the dev set is sharded over devices
        self.val_losses[dataloader_idx].append(torch.stack([self.loss(logits, batch["labels"]).detach() * n, n]))
        preds = logits.float() if self.spec.is_regression else logits.argmax(-1)
        self.metrics_for(dataloader_idx).update(preds, batch["labels"])
        if not self.spec.is_regression:
            self.val_outputs[dataloader_idx].append((preds.detach().cpu(), batch["labels"].detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        values: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for i, split in enumerate(self.split_names):
            computed = {k: float(v) for k, v in self.metrics_for(i).compute().items()}
            self.metrics_for(i).reset()
            suffix = "" if len(self.split_names) == 1 else "_" + split.removeprefix("validation_")
            for k, v in computed.items():
                values[f"val/{k}{suffix}"] = v
                per_metric.setdefault(k, []).append(v)
        losses = [t for split in self.val_losses for t in split]
        total = reduce_sum(self, torch.stack(losses).sum(0)) if losses else None  # (2,): summed loss, examples
        values["val/loss"] = float(total[0] / total[1]) if total is not None else float("nan")
        self.val_losses = [[] for _ in self.split_names]
        values["val/score"] = task_score(self.spec, {k: sum(v) / len(v) for k, v in per_metric.items()})
        values.update(self.attention_metrics())
        self.last_val = values
        self.note_validation(values)
        self.keep_predictions()
        self.log_dict(values, prog_bar=False, add_dataloader_idx=False)

    def keep_predictions(self) -> None:
        """Per-example dev predictions of this validation, compactly, for the record (classification only)."""
        outputs, self.val_outputs = self.val_outputs, [[] for _ in self.split_names]
        if self.spec.is_regression or not all(outputs) or self.trainer.world_size > 1:
            return  # on several devices each rank holds a shard: no per-example predictions recorded
        preds = [torch.cat([p for p, _ in split]) for split in outputs]
        labels = [torch.cat([y for _, y in split]) for split in outputs]
        self.predictions = encode(torch.cat(labels).numpy(), torch.cat(preds).numpy(), len(self.spec.labels),
                                  [len(y) for y in labels])
