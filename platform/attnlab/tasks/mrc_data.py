"""What the reading-comprehension data modules share (`span_data.SpanDataModule` for CMRC 2018,
`choice_data.ChoiceDataModule` for C3): loading the example dicts of `clue_mrc.py`, the tokenizer
(trained on the train split's texts, cached, as for the other tasks), encoding every split once, and
length-bucketed training batches / in-order evaluation batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from attnlab.tasks.batching import BucketBatchSampler
from attnlab.tasks.loading import Source, load_examples
from attnlab.tasks.records import Example
from attnlab.tasks.spec import TaskSpec, get_task
from attnlab.tasks.tokenizer import HasTokenizer, build_tokenizer, load_pretrained_tokenizer


def plain_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """A copy that neither truncates nor pads (the modules place special tokens themselves)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))  # documents repeat once per question: count each once


class ReadingDataModule(HasTokenizer, pl.LightningDataModule):
    """Base class. Subclasses say which texts train the tokenizer, how a split is encoded into items
    (each with a length for bucketing) and how items are collated.

    `max_train_examples` / `max_eval_examples` count questions (seeded subset, `subset_seed`).
    `batch_size` counts items: windows for CMRC, questions (with all their choices) for C3.
    """

    def __init__(self, task: TaskSpec | str, data_root: str | Path | None = None, *,
                 tokenizer: Tokenizer | None = None, vocab_size: int = 8000, max_length: int | None = None,
                 max_question_length: int = 64, batch_size: int = 32, eval_batch_size: int | None = None,
                 max_train_examples: int | None = None, max_eval_examples: int | None = None, seed: int = 0,
                 subset_seed: int = 0, cache_dir: str | Path | None = None, source: Source = "auto",
                 pretrained_dir: str | Path | None = None, bucket_chunk_batches: int = 50) -> None:
        super().__init__()
        self.spec = get_task(task)
        self.data_root, self.source, self.cache_dir, self.pretrained_dir = data_root, source, cache_dir, pretrained_dir
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.max_length = max_length or self.spec.max_length
        self.max_question_length = max_question_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.max_train_examples, self.max_eval_examples = max_train_examples, max_eval_examples
        self.seed, self.subset_seed, self.bucket_chunk_batches = seed, subset_seed, bucket_chunk_batches
        self.val_split_names: tuple[str, ...] = self.spec.val_splits
        self.examples: dict[str, list[Example]] = {}  # split -> the loaded example dicts
        self.items: dict[str, list[Any]] = {}  # split -> encoded items
        self.data_stats: dict[str, float] = {}  # "data/<split>_<what>" counts, copied into the record

    # ---- what subclasses define -------------------------------------------------------------------
    def tokenizer_texts(self, examples: list[Example]) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, split: str, examples: list[Example]) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_length(self, item: Any) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def collate_fn(self) -> Callable[[list[Any]], Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- shared ----------------------------------------------------------------------------------
    def load(self, split: str, max_examples: int | None) -> list[Example]:
        return load_examples(self.spec, split, self.data_root, source=self.source, max_examples=max_examples,
                             seed=self.subset_seed)

    def setup(self, stage: str | None = None) -> None:
        fitting = stage in (None, "fit")
        train = None
        if "train" not in self.items and (fitting or (self.tokenizer is None and self.pretrained_dir is None)):
            train = self.load("train", self.max_train_examples)
        if self.tokenizer is None:
            if self.pretrained_dir is not None:
                self.tokenizer = load_pretrained_tokenizer(self.pretrained_dir)
            else:
                assert train is not None  # loaded above: no tokenizer and no pretrained_dir
                self.tokenizer = build_tokenizer(self.spec, self.tokenizer_texts(train), self.vocab_size,
                                                 self.cache_dir)
        if train is not None and fitting:
            self.examples["train"], self.items["train"] = train, self.encode("train", train)
        if stage in (None, "fit", "validate"):
            for name in self.val_split_names:
                if name not in self.items:
                    self.prepare_eval_split(name)

    def prepare_eval_split(self, split: str, max_examples: int | None = None) -> None:
        """Load and encode one more labelled split for evaluation (e.g. CMRC `trial`, C3 `labelled_test1.0`)."""
        examples = self.load(split, max_examples if max_examples is not None else self.max_eval_examples)
        self.examples[split], self.items[split] = examples, self.encode(split, examples)

    def _ready(self, split: str) -> list[Any]:
        if split not in self.items:
            raise RuntimeError(f"split {split!r} is not ready: have {list(self.items)}; call setup() first")
        return self.items[split]

    def train_dataloader(self) -> DataLoader[Any]:
        items = self._ready("train")
        sampler = BucketBatchSampler([self.item_length(i) for i in items], self.batch_size, self.seed,
                                     self.bucket_chunk_batches)
        return DataLoader(items, batch_sampler=sampler, collate_fn=self.collate_fn())  # type: ignore[arg-type]

    def eval_dataloader(self, split: str) -> DataLoader[Any]:
        return DataLoader(self._ready(split), batch_size=self.eval_batch_size, shuffle=False,  # type: ignore[arg-type]
                          collate_fn=self.collate_fn())

    def val_dataloader(self) -> DataLoader[Any] | list[DataLoader[Any]]:
        loaders = [self.eval_dataloader(name) for name in self.val_split_names]
        return loaders[0] if len(loaders) == 1 else loaders
