"""Encoded splits, dynamic padding and length-bucketed batching.

Batch layout (all tensors, B = batch size, T = longest sequence in the batch):
  input_ids (B, T) long, attention_mask (B, T) bool (True = real token),
  token_type_ids (B, T) long (1 on the second sentence and its [SEP]), labels (B,) long / float.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tokenizers import Tokenizer
from torch.utils.data import Dataset, Sampler

from attnlab.tasks.spec import TaskSpec

Item = tuple[list[int], list[int], "int | float | None"]
Batch = dict[str, torch.Tensor]


@dataclass
class EncodedSplit(Dataset[Item]):
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[Any] | None = None  # None for unlabelled (test) splits
    lengths: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = [len(ids) for ids in self.input_ids]

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> Item:
        label = self.labels[index] if self.labels is not None else None
        return self.input_ids[index], self.token_type_ids[index], label


def truncating_copy(tokenizer: Tokenizer, max_length: int, strategy: str = "longest_first") -> Tokenizer:
    """A copy that truncates to `max_length` and never pads (the caller's tokenizer is untouched)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length, strategy=strategy)
    return copy


def _column(examples: Any, name: str) -> list[Any] | None:
    names = examples.column_names if hasattr(examples, "column_names") else list(examples)
    return list(examples[name]) if name in names else None


def encode_examples(spec: TaskSpec, tokenizer: Tokenizer, examples: Any, max_length: int) -> EncodedSplit:
    """Encode a normalised split: a `datasets.Dataset` or a dict of columns (text_a, text_b, label)."""
    texts_a = _column(examples, "text_a") or []
    inputs: list[Any] = texts_a
    if spec.is_pair:
        inputs = list(zip(texts_a, _column(examples, "text_b") or [], strict=True))
    encodings = truncating_copy(tokenizer, max_length, spec.truncation).encode_batch(inputs)
    return EncodedSplit(
        input_ids=[e.ids for e in encodings],
        token_type_ids=[e.type_ids for e in encodings],
        labels=_column(examples, "label"),
    )


class Collator:
    """Pads a list of items to the longest one (dynamic padding)."""

    def __init__(self, pad_id: int, regression: bool = False) -> None:
        self.pad_id = pad_id
        self.regression = regression

    def __call__(self, items: Sequence[Item]) -> Batch:
        longest = max(len(ids) for ids, _, _ in items)
        input_ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)  # (B, T)
        token_type_ids = torch.zeros((len(items), longest), dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(items), longest), dtype=torch.bool)  # (B, T)
        for row, (ids, types, _) in enumerate(items):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            token_type_ids[row, : len(types)] = torch.tensor(types, dtype=torch.long)
            attention_mask[row, : len(ids)] = True
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if all(label is not None for _, _, label in items):
            dtype = torch.float32 if self.regression else torch.long
            batch["labels"] = torch.tensor([label for _, _, label in items], dtype=dtype)  # (B,)
        return batch


class BucketBatchSampler(Sampler[list[int]]):
    """Length-bucketed batches: shuffle, sort by length within chunks of `chunk_batches` batches,
    cut into batches, shuffle the batches. Similar lengths share a batch (little padding) while the
    order stays random. Seeded; the epoch (`set_epoch`, else a counter) varies the order.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        chunk_batches: int = 50,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1 or chunk_batches < 1:
            raise ValueError("batch_size and chunk_batches must be positive")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.chunk_batches = chunk_batches
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(f"{self.seed}-{self.epoch}")
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        chunk = self.batch_size * self.chunk_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start : start + chunk], key=self.lengths.__getitem__)
            batches += [part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        rng.shuffle(batches)
        return iter(batches)
