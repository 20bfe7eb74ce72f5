"""Multiple choice (C3; the FewCLUE ChID stand-in) as one sequence per (document, question, choice).

Sequence: `[CLS] document [SEP] question [SEP] choice [SEP]` (no question: `[CLS] document [SEP] choice
[SEP]`), token types 0 on `[CLS] document [SEP]` and 1 after. The question+choice part keeps at most
`max_question_length` tokens (the choice whole, the question cut first); the document fills the rest
of `max_length` from its beginning. A question has 2–4 choices (C3), so a batch of B questions holds
N = Σ choices sequences, and `choice_mask` says which of the C slots of each question are real.

Batch layout: input_ids, token_type_ids (N, T) long; attention_mask (N, T) bool; choice_mask (B, C)
bool (row-major order of its True entries = the order of the N sequences); labels (B,) long (answer
position; labelled splits only); example (B,) long (the question's index in its split).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attnlab.tasks.mrc_data import ReadingDataModule, plain_tokenizer, unique
from attnlab.tasks.records import Example


@dataclass(frozen=True)
class ChoiceQuestion:
    sequences: list[tuple[list[int], list[int]]]  # per choice: (input ids, token type ids)
    label: int | None
    example: int


def choice_sequence(doc: list[int], question: list[int], choice: list[int], cls: int, sep: int,
                    max_length: int, max_question_length: int) -> tuple[list[int], list[int]]:
    choice = choice[:max_question_length]
    room = max_question_length - len(choice) - 1  # one [SEP] between question and choice
    tail = [*question[:room], sep, *choice] if question and room > 0 else choice
    head = [cls, *doc[: max(0, max_length - len(tail) - 3)], sep]
    return [*head, *tail, sep], [0] * len(head) + [1] * (len(tail) + 1)


class ChoiceCollator:
    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[ChoiceQuestion]) -> dict[str, Tensor]:
        sequences = [s for q in items for s in q.sequences]
        n, t = len(sequences), max(len(ids) for ids, _ in sequences)
        c = max(len(q.sequences) for q in items)
        input_ids = torch.full((n, t), self.pad_id, dtype=torch.long)  # (N, T)
        token_type_ids = torch.zeros((n, t), dtype=torch.long)  # (N, T)
        attention_mask = torch.zeros((n, t), dtype=torch.bool)  # (N, T)
        for row, (ids, types) in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            token_type_ids[row, : len(types)] = torch.tensor(types)
            attention_mask[row, : len(ids)] = True
        counts = torch.tensor([len(q.sequences) for q in items])
        choice_mask = torch.arange(c)[None, :] < counts[:, None]  # (B, C)
        batch = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
                 "choice_mask": choice_mask, "example": torch.tensor([q.example for q in items])}
        if all(q.label is not None for q in items):
            batch["labels"] = torch.tensor([q.label for q in items])  # (B,)
        return batch


class ChoiceDataModule(ReadingDataModule):
    def tokenizer_texts(self, examples: list[Example]) -> list[str]:
        return unique([e["document"] for e in examples]) + [
            t for e in examples for t in (e["question"], *e["choices"]) if t]

    def encode(self, split: str, examples: list[Example]) -> list[ChoiceQuestion]:
        tok, ids = plain_tokenizer(self._ready_tokenizer()), self.special_ids
        documents = unique([e["document"] for e in examples])
        doc_ids = dict(zip(documents, (e.ids for e in tok.encode_batch(documents, add_special_tokens=False)),
                           strict=True))
        texts = unique([t for e in examples for t in (e["question"], *e["choices"])])
        text_ids = dict(zip(texts, (e.ids for e in tok.encode_batch(texts, add_special_tokens=False)), strict=True))
        questions = []
        for index, e in enumerate(examples):
            sequences = [choice_sequence(doc_ids[e["document"]], text_ids[e["question"]], text_ids[choice], ids.cls,
                                         ids.sep, self.max_length, self.max_question_length)
                         for choice in e["choices"]]
            questions.append(ChoiceQuestion(sequences, e.get("label"), index))
        self.data_stats[f"data/{split}_questions"] = float(len(examples))
        self.data_stats[f"data/{split}_sequences"] = float(sum(len(q.sequences) for q in questions))
        return questions

    def item_length(self, item: ChoiceQuestion) -> int:
        return max(len(ids) for ids, _ in item.sequences)

    def collate_fn(self) -> Callable[[list[Any]], Any]:
        return ChoiceCollator(self.special_ids.pad)
