"""Data for generation tasks built from the benchmark files:

- `seq2seq`: UniLM-style pairs [CLS] source [SEP] target [SEP], token types 0 on the source and
  1 on the target. On CLUE CSL the source is the paper abstract and the target its keywords
  (joined by "，"); only rows labelled 1 ("all keywords genuine") are used. CSL repeats each
  abstract in 2-3 genuine rows, each with a different subset of the paper's keywords (3,954 distinct
  train abstracts in 10,000 genuine rows): rows sharing a source are merged into one example whose
  target is the union of their keywords — else one input has several contradicting targets —, the
  keywords that occur in the abstract first, in order of occurrence, so the copy path moves forward.
- `conditional_lm`: [CLS] text [SEP] with the example's class id as the condition (fed to
  Conditional LayerNorm), e.g. TNEWS category → headline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from attnlab.tasks.keywords import KEYWORD_SEPARATOR
from attnlab.tasks.loading import Source, load_examples
from attnlab.tasks.spec import TaskSpec, get_task
from attnlab.tasks.tokenizer import HasTokenizer, build_tokenizer, load_pretrained_tokenizer

Pair = tuple[list[int], list[int], int, int]  # input ids, token types, condition/label, example index
KEYWORD_TARGETS = frozenset({"clue/csl"})  # seq2seq tasks whose target is a "，"-joined keyword list


def merge_keyword_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sharing a source → one row, target = the union of their keywords (see the module doc)."""
    merged: dict[str, list[str]] = {}
    labels: dict[str, Any] = {}
    for row in rows:
        labels.setdefault(row["text_a"], row.get("label", 0))
        keywords = merged.setdefault(row["text_a"], [])
        keywords += [k for k in row["text_b"].split(KEYWORD_SEPARATOR) if k and k not in keywords]
    out = []
    for source, keywords in merged.items():
        where = {k: source.find(k) for k in keywords}
        ordered = sorted(keywords, key=lambda k: (where[k] < 0, max(where[k], 0)))  # stable: absent ones as seen
        out.append({"text_a": source, "text_b": KEYWORD_SEPARATOR.join(ordered), "label": labels[source]})
    return out


def _plain(tokenizer: Tokenizer) -> Tokenizer:
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


class GenerationDataModule(HasTokenizer, pl.LightningDataModule):
    """`objective` is "seq2seq" or "conditional_lm"; batches add `index` (B,) and, for
    conditional_lm, `labels` (B,) = the condition class."""

    def __init__(self, task: TaskSpec | str, data_root: str | Path | None = None, *, objective: str = "seq2seq",
                 vocab_size: int = 8000, max_length: int = 128, target_length: int = 32, batch_size: int = 32,
                 eval_batch_size: int | None = None, max_train_examples: int | None = None,
                 max_eval_examples: int | None = None, seed: int = 0, cache_dir: str | Path | None = None,
                 source: Source = "auto", pretrained_dir: str | Path | None = None) -> None:
        super().__init__()
        if objective not in ("seq2seq", "conditional_lm"):
            raise ValueError(f"unknown generation objective {objective!r}; valid: seq2seq, conditional_lm")
        self.spec = get_task(task)
        if objective == "seq2seq" and not self.spec.is_pair:
            raise ValueError(f"{self.spec.name}: seq2seq needs a pair task (source = text_a, target = text_b)")
        self.objective, self.data_root, self.source = objective, data_root, source
        self.vocab_size, self.max_length, self.target_length = vocab_size, max_length, target_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.max_train_examples, self.max_eval_examples = max_train_examples, max_eval_examples
        self.seed, self.cache_dir, self.pretrained_dir = seed, cache_dir, pretrained_dir
        self.tokenizer: Tokenizer | None = None
        self.splits: dict[str, list[Pair]] = {}
        self.raw: dict[str, list[dict[str, Any]]] = {}
        self.val_split_names: tuple[str, ...] = ("validation",)

    def _examples(self, split: str, limit: int | None) -> list[dict[str, Any]]:
        rows = load_examples(self.spec, split, self.data_root, source=self.source)
        if self.objective == "seq2seq" and self.spec.labels:
            codes = self.spec.label_codes
            positive = codes.index("1") if "1" in codes else None  # CSL: "1" = all keywords genuine
            rows = [r for r in rows if positive is None or r["label"] == positive]
        if self.objective == "seq2seq" and self.spec.name in KEYWORD_TARGETS:
            rows = merge_keyword_rows(rows)
        return rows[:limit] if limit else rows

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        train = self._examples("train", self.max_train_examples)
        if self.tokenizer is None:
            if self.pretrained_dir is not None:
                self.tokenizer = load_pretrained_tokenizer(self.pretrained_dir)
            else:
                texts = [r[f] for r in train for f in self.spec.text_fields]
                self.tokenizer = build_tokenizer(self.spec, texts, self.vocab_size, self.cache_dir)
        for split, rows in (("train", train), ("validation", self._examples("validation", self.max_eval_examples))):
            self.raw[split] = rows
            self.splits[split] = [self.encode(r, i) for i, r in enumerate(rows)]

    def encode(self, row: dict[str, Any], index: int) -> Pair:
        assert self.tokenizer is not None
        tok, ids = _plain(self.tokenizer), self.special_ids
        src = tok.encode(row["text_a"], add_special_tokens=False).ids
        if self.objective == "conditional_lm":
            body = [ids.cls, *src[: self.max_length - 2], ids.sep]
            return body, [0] * len(body), int(row["label"]), index
        tgt = [*tok.encode(row["text_b"], add_special_tokens=False).ids[:self.target_length - 1], ids.sep]
        src = [ids.cls, *src[: self.max_length - len(tgt) - 2], ids.sep]
        return src + tgt, [0] * len(src) + [1] * len(tgt), int(row.get("label", 0)), index

    def source_ids(self, split: str, index: int) -> list[int]:
        """The prompt for generation: [CLS] source [SEP] (seq2seq) or [CLS] (conditional LM)."""
        ids, types, _, _ = self.splits[split][index]
        return ids[: types.index(1)] if 1 in types else ids[:1]

    def collate(self, items: list[Pair]) -> dict[str, torch.Tensor]:
        t = max(len(i[0]) for i in items)
        pad = self.special_ids.pad
        ids = torch.full((len(items), t), pad, dtype=torch.long)
        types = torch.zeros(len(items), t, dtype=torch.long)
        for b, (x, y, _, _) in enumerate(items):
            ids[b, : len(x)] = torch.tensor(x)
            types[b, : len(y)] = torch.tensor(y)
        # padding continues the last segment so a prefix mask stays "source then target"
        types = torch.where(ids == pad, types.max(dim=1, keepdim=True).values, types)
        lengths = torch.tensor([len(i[0]) for i in items])
        return {"input_ids": ids, "attention_mask": torch.arange(t)[None] < lengths[:, None], "token_type_ids": types,
                "labels": torch.tensor([i[2] for i in items]), "index": torch.tensor([i[3] for i in items])}

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.splits["train"],  # type: ignore[arg-type]
                          batch_size=self.batch_size, shuffle=True, collate_fn=self.collate,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.splits["validation"],  # type: ignore[arg-type]
                          batch_size=self.eval_batch_size, collate_fn=self.collate)
