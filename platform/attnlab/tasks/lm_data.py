"""LightningDataModule for causal language modelling on the lm/* corpora.

Each document (a WikiText-2 line, a ci poem) is tokenized without [CLS]; a [SEP] closes it as an
end-of-document token (the `<eos>` of the usual word-level setup). All documents are concatenated
and cut into blocks of `max_length` tokens; the remainder is dropped. `labels` equal `input_ids`:
the model shifts them by one position.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, TensorDataset

from attnlab.tasks.batching import Batch
from attnlab.tasks.loading import Source, load_split
from attnlab.tasks.spec import TaskSpec, get_task
from attnlab.tasks.tokenizer import HasTokenizer, build_tokenizer, load_pretrained_tokenizer, special_ids


def pack_blocks(tokenizer: Tokenizer, documents: Sequence[str], block_size: int) -> torch.Tensor:
    """(N, block_size) long tensor of consecutive tokens, each document followed by [SEP]."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    end = special_ids(tokenizer).sep
    stream: list[int] = []
    for encoding in copy.encode_batch(list(documents), add_special_tokens=False):
        stream += encoding.ids
        stream.append(end)
    num_blocks = len(stream) // block_size
    if num_blocks == 0:
        raise ValueError(f"{len(stream)} tokens do not fill one block of {block_size}")
    return torch.tensor(stream[: num_blocks * block_size], dtype=torch.long).view(num_blocks, block_size)


def collate_blocks(items: Sequence[tuple[torch.Tensor, ...]]) -> Batch:
    input_ids = torch.stack([block for block, *_ in items])  # (B, T)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids, dtype=torch.bool),  # (B, T): no padding
        "token_type_ids": torch.zeros_like(input_ids),  # (B, T)
        "labels": input_ids.clone(),  # (B, T)
    }


class LMDataModule(HasTokenizer, pl.LightningDataModule):
    """`max_train_examples` / `max_eval_examples` count documents, kept as a seeded subset."""

    def __init__(
        self,
        task: TaskSpec | str = "lm/wikitext2",
        data_root: str | Path | None = None,
        *,
        tokenizer: Tokenizer | None = None,
        vocab_size: int = 8000,
        max_length: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_train_examples: int | None = None,
        max_eval_examples: int | None = None,
        seed: int = 0,
        subset_seed: int = 0,
        cache_dir: str | Path | None = None,
        source: Source = "auto",
        pretrained_dir: str | Path | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.spec = get_task(task)
        if not self.spec.is_lm:
            raise ValueError(f"{self.spec.name} is not a language-modelling corpus: use TaskDataModule")
        self.data_root = data_root
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.max_length = max_length or self.spec.max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.max_train_examples = max_train_examples
        self.max_eval_examples = max_eval_examples
        self.seed = seed
        self.subset_seed = subset_seed
        self.cache_dir = cache_dir
        self.source: Source = source
        self.pretrained_dir = pretrained_dir
        self.num_workers = num_workers
        self.val_split_names: tuple[str, ...] = self.spec.val_splits
        self.train_blocks: torch.Tensor | None = None
        self.val_blocks: torch.Tensor | None = None
        self.save_hyperparameters(ignore=["tokenizer"])

    def _documents(self, split: str, max_examples: int | None) -> list[str]:
        dataset = load_split(
            self.spec,
            split,
            self.data_root,
            source=self.source,
            max_examples=max_examples,
            seed=self.subset_seed,
        )
        return list(dataset["text_a"])

    def setup(self, stage: str | None = None) -> None:
        fitting = stage in (None, "fit")
        train = None
        if self.train_blocks is None and (
            fitting or (self.tokenizer is None and self.pretrained_dir is None)
        ):
            train = self._documents("train", self.max_train_examples)
        if self.tokenizer is None:
            if self.pretrained_dir is not None:
                self.tokenizer = load_pretrained_tokenizer(self.pretrained_dir)
            else:
                self.tokenizer = build_tokenizer(self.spec, train or [], self.vocab_size, self.cache_dir)
        if train is not None and fitting:
            self.train_blocks = pack_blocks(self.tokenizer, train, self.max_length)
        if stage in (None, "fit", "validate") and self.val_blocks is None:
            documents = self._documents(self.val_split_names[0], self.max_eval_examples)
            self.val_blocks = pack_blocks(self.tokenizer, documents, self.max_length)



    def train_dataloader(self) -> DataLoader[Any]:
        if self.train_blocks is None:
            raise RuntimeError("train blocks are not ready: call setup('fit') first")
        return DataLoader(
            TensorDataset(self.train_blocks),
            batch_size=self.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=collate_blocks,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader[Any]:
        if self.val_blocks is None:
            raise RuntimeError("validation blocks are not ready: call setup() first")
        return DataLoader(
            TensorDataset(self.val_blocks),
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=collate_blocks,
            num_workers=self.num_workers,
        )
