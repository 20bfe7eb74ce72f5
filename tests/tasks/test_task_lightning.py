"""The data modules drive a real Lightning loop, and their labels carry signal (learning happens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from attnlab.tasks.data import TaskDataModule
from attnlab.tasks.metrics import build_metrics


class BagOfWords(pl.LightningModule):
    """Masked mean of token embeddings -> linear: enough to show the labels match the texts."""

    def __init__(self, vocab_size: int, num_labels: int, task: str) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 32)
        self.head = nn.Linear(32, num_labels)
        self.val_metrics = [build_metrics(task, prefix="val/") for _ in range(2)]  # one per dataloader

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        pooled = (self.embed(batch["input_ids"]) * mask).sum(1) / mask.sum(1)  # (B, 32)
        return self.head(pooled)  # (B, C)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch), batch["labels"])

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.val_metrics[dataloader_idx].update(self.forward(batch), batch["labels"])

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _trainer(**kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_training_on_a_real_slice_beats_chance(data_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    dm = TaskDataModule(
        "glue/sst2", data_root, vocab_size=2000, batch_size=64, max_train_examples=4000, cache_dir=tmp_path
    )
    dm.setup("fit")
    model = BagOfWords(dm.tokenizer_vocab_size, dm.spec.num_labels, dm.spec.name)
    _trainer(max_epochs=3, default_root_dir=tmp_path).fit(model, datamodule=dm)
    model.eval()
    metrics = build_metrics("glue/sst2")
    with torch.no_grad():
        for batch in dm.eval_dataloader("validation"):
            metrics.update(model(batch), batch["labels"])
    accuracy = float(metrics.compute()["accuracy"])
    print(f"SST-2 dev accuracy after 3 epochs on 4000 examples: {accuracy:.3f}")
    assert accuracy > 0.65  # chance is 0.51 on SST-2 dev


def test_two_validation_dataloaders_in_a_lightning_loop(tmp_path: Path, mnli_root: Path) -> None:
    dm = TaskDataModule("glue/mnli", mnli_root, vocab_size=100, batch_size=4, cache_dir=tmp_path / "cache")
    model = BagOfWords(100, 3, "glue/mnli")
    _trainer(fast_dev_run=2, default_root_dir=tmp_path).fit(model, datamodule=dm)
    assert [m["val/accuracy"].update_count for m in model.val_metrics] == [2, 2]  # 2 batches per split
