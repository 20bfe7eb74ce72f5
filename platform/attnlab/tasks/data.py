"""LightningDataModule for GLUE/CLUE classification and regression tasks.

setup() loads the splits (local files or the HF hub, see `loading.py`), trains or loads the
tokenizer (cached, see `tokenizer.py`), and encodes every example once: [CLS] a [SEP] (b [SEP]),
truncated longest-first to `max_length`. Training batches are length-bucketed and dynamically
padded; validation batches keep file order. Batch layout: see `batching.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from attnlab.tasks.batching import BucketBatchSampler, Collator, EncodedSplit, encode_examples
from attnlab.tasks.loading import Source, load_split
from attnlab.tasks.spec import TaskSpec, get_task
from attnlab.tasks.tokenizer import HasTokenizer, build_tokenizer, load_pretrained_tokenizer


class TaskDataModule(HasTokenizer, pl.LightningDataModule):
    """Data for one classification/regression task.

    `max_train_examples` / `max_eval_examples` keep a random subset drawn with `subset_seed`
    (fixed by default, so runs with different `seed`s see the same data); `seed` drives the
    training order. MNLI has two validation splits: `val_dataloader()` then returns a list,
    ordered as `val_split_names`; with one split it returns a single DataLoader.
    """

    def __init__(
        self,
        task: TaskSpec | str,
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
        bucket_chunk_batches: int = 50,
    ) -> None:
        super().__init__()
        self.spec = get_task(task)
        if self.spec.is_lm:
            raise ValueError(f"{self.spec.name} is a language-modelling corpus: use LMDataModule")
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
        self.bucket_chunk_batches = bucket_chunk_batches
        self.val_split_names: tuple[str, ...] = self.spec.val_splits
        self.train_split: EncodedSplit | None = None
        self.val_splits: dict[str, EncodedSplit] = {}
        self.save_hyperparameters(ignore=["tokenizer"])

    def _load(self, split: str, max_examples: int | None) -> Any:
        return load_split(
            self.spec,
            split,
            self.data_root,
            source=self.source,
            max_examples=max_examples,
            seed=self.subset_seed,
        )

    def setup(self, stage: str | None = None) -> None:
        fitting = stage in (None, "fit")
        needs_train_texts = self.tokenizer is None and self.pretrained_dir is None
        train = None
        if self.train_split is None and (fitting or needs_train_texts):
            train = self._load("train", self.max_train_examples)
        if self.tokenizer is None:
            if self.pretrained_dir is not None:
                self.tokenizer = load_pretrained_tokenizer(self.pretrained_dir)
            else:
                assert train is not None  # loaded above: no tokenizer and no pretrained_dir
                texts = [t for name in self.spec.text_fields for t in train[name]]
                self.tokenizer = build_tokenizer(self.spec, texts, self.vocab_size, self.cache_dir)
        if train is not None and fitting:
            self.train_split = encode_examples(self.spec, self.tokenizer, train, self.max_length)
        if stage in (None, "fit", "validate") and not self.val_splits:
            for name in self.val_split_names:
                examples = self._load(name, self.max_eval_examples)
                self.val_splits[name] = encode_examples(self.spec, self.tokenizer, examples, self.max_length)



    def _require(self, value: Any, what: str) -> Any:
        if value is None:
            raise RuntimeError(f"{what} is not ready: call setup() first")
        return value

    def _collator(self) -> Collator:
        return Collator(self.special_ids.pad, regression=self.spec.is_regression)

    def train_dataloader(self) -> DataLoader[Any]:
        split: EncodedSplit = self._require(self.train_split, "train split")
        sampler = BucketBatchSampler(split.lengths, self.batch_size, self.seed, self.bucket_chunk_batches)
        return DataLoader(
            split,
            batch_sampler=sampler,
            collate_fn=self._collator(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def eval_dataloader(self, split: str) -> DataLoader[Any]:
        """In-order batches of one validation split (by name, see `val_split_names`)."""
        if split not in self.val_splits:
            raise RuntimeError(
                f"split {split!r} is not ready: have {list(self.val_splits)}; call setup() first"
            )
        return DataLoader(
            self.val_splits[split],
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=self._collator(),
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader[Any] | list[DataLoader[Any]]:
        loaders = [self.eval_dataloader(name) for name in self.val_split_names]
        return loaders[0] if len(loaders) == 1 else loaders
