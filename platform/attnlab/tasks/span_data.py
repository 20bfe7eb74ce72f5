"""Span extraction (CMRC 2018) as windows over long contexts, BERT-style (Devlin et al., 2019, SQuAD).

Each question gives one or more windows `[CLS] question [SEP] context[w : w + W] [SEP]`, token types
0 on `[CLS] question [SEP]` and 1 on the context part. W = max_length − |question| − 3, and window
starts are `doc_stride` tokens apart (the step between windows, as in BERT's run_squad.py, so
consecutive windows overlap by W − doc_stride tokens; by default half the shortest window). The
question is cut to `max_question_length`.

Gold positions: the first reference whose span could be located (see `clue_mrc.locate_answer`),
mapped to the tokens covering its first and last character. A window that does not hold the whole
answer points both at [CLS] (position 0), as BERT does; at prediction time [CLS] is never chosen.

Batch layout (B windows, T = longest in the batch): input_ids, token_type_ids (B, T) long;
attention_mask, context_mask (B, T) bool (context_mask: the window's context tokens);
offsets (B, T, 2) long (character span of each context token in the context, −1 elsewhere);
start_positions, end_positions, example (B,) long (example = the question's index in its split).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attnlab.tasks.clue_mrc import alignment_counts
from attnlab.tasks.mrc_data import ReadingDataModule, plain_tokenizer, unique
from attnlab.tasks.records import Example

log = logging.getLogger(__name__)
NO_OFFSET = (-1, -1)


@dataclass(frozen=True)
class SpanWindow:
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int]]  # per token: character span in the context, NO_OFFSET outside it
    start: int  # gold token positions in this window; 0 ([CLS]) when the answer is not wholly inside
    end: int
    example: int


def window_starts(n_tokens: int, window: int, stride: int) -> list[int]:
    """Starts of the windows covering n_tokens context tokens (at least one window)."""
    starts = [0]
    while starts[-1] + window < n_tokens:
        starts.append(starts[-1] + stride)
    return starts


def token_span(offsets: Sequence[tuple[int, int]], span: Sequence[int]) -> tuple[int, int] | None:
    """Indices of the first and last token overlapping the character span [start, end)."""
    start, end = span
    inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
    return (inside[0], inside[-1]) if inside else None


def encode_question(example: Example, index: int, q_ids: list[int], ctx_ids: list[int],
                    ctx_offsets: list[tuple[int, int]], cls: int, sep: int, max_length: int,
                    doc_stride: int) -> list[SpanWindow]:
    window = max_length - len(q_ids) - 3
    stride = max(1, min(doc_stride, window))  # a step larger than the window would skip context
    span = next((s for s in example.get("spans", []) if s is not None), None)
    gold = token_span(ctx_offsets, span) if span is not None else None
    head = [cls, *q_ids, sep]
    windows = []
    for w in window_starts(len(ctx_ids), window, stride):
        ids = ctx_ids[w : w + window]
        start = end = 0
        if gold is not None and w <= gold[0] and gold[1] < w + len(ids):
            start, end = gold[0] - w + len(head), gold[1] - w + len(head)
        windows.append(SpanWindow(
            input_ids=[*head, *ids, sep], token_type_ids=[0] * len(head) + [1] * (len(ids) + 1),
            offsets=[NO_OFFSET] * len(head) + list(ctx_offsets[w : w + window]) + [NO_OFFSET],
            start=start, end=end, example=index))
    return windows


def decode_span(example: Example, window: SpanWindow, start: int, end: int) -> str:
    """The context text from token `start` to token `end` of a window (both context tokens)."""
    return str(example["context"][window.offsets[start][0] : window.offsets[end][1]])


def best_spans(start_logits: Tensor, end_logits: Tensor, context_mask: Tensor,
               max_answer_len: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per window, the best span over its context tokens with end ≥ start and at most
    `max_answer_len` tokens: (score = start + end logit (B,), start (B,), end (B,)).
    A window without context tokens scores −inf."""
    b, t = start_logits.shape
    scores = start_logits.float()[:, :, None] + end_logits.float()[:, None, :]  # (B, T start, T end)
    pos = torch.arange(t, device=scores.device)
    length = pos[None, :] - pos[:, None]  # (T, T): end − start
    valid = (length >= 0) & (length < max_answer_len)  # (T, T)
    valid = valid[None] & context_mask[:, :, None] & context_mask[:, None, :]  # (B, T, T)
    scores = scores.masked_fill(~valid, float("-inf"))
    best, flat = scores.reshape(b, t * t).max(dim=1)  # (B,)
    return best, flat // t, flat % t


class SpanCollator:
    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[SpanWindow]) -> dict[str, Tensor]:
        b, t = len(items), max(len(w.input_ids) for w in items)
        input_ids = torch.full((b, t), self.pad_id, dtype=torch.long)  # (B, T)
        token_type_ids = torch.zeros((b, t), dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((b, t), dtype=torch.bool)  # (B, T)
        offsets = torch.full((b, t, 2), -1, dtype=torch.long)  # (B, T, 2)
        for row, w in enumerate(items):
            n = len(w.input_ids)
            input_ids[row, :n] = torch.tensor(w.input_ids)
            token_type_ids[row, :n] = torch.tensor(w.token_type_ids)
            attention_mask[row, :n] = True
            offsets[row, :n] = torch.tensor(w.offsets)
        return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
                "context_mask": offsets[:, :, 0] >= 0, "offsets": offsets,
                "start_positions": torch.tensor([w.start for w in items]),
                "end_positions": torch.tensor([w.end for w in items]),
                "example": torch.tensor([w.example for w in items])}


class SpanDataModule(ReadingDataModule):
    """CMRC 2018 windows; `data_stats` holds, per split, the answers whose answer_start was fixed by
    search and those not found in the context (never a training target), as `data/<split>_<count>`."""

    def __init__(self, *args: Any, doc_stride: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shortest_window = self.max_length - self.max_question_length - 3
        self.doc_stride = doc_stride or max(1, shortest_window // 2)

    def tokenizer_texts(self, examples: list[Example]) -> list[str]:
        return unique([e["context"] for e in examples]) + [e["question"] for e in examples]

    def encode(self, split: str, examples: list[Example]) -> list[SpanWindow]:
        tok, ids = plain_tokenizer(self._ready_tokenizer()), self.special_ids
        contexts = unique([e["context"] for e in examples])
        encoded = dict(zip(contexts, tok.encode_batch(contexts, add_special_tokens=False), strict=True))
        questions = tok.encode_batch([e["question"] for e in examples], add_special_tokens=False)
        windows: list[SpanWindow] = []
        outside = 0
        for index, (example, question) in enumerate(zip(examples, questions, strict=True)):
            ctx = encoded[example["context"]]
            mine = encode_question(example, index, question.ids[: self.max_question_length], ctx.ids,
                                   ctx.offsets, ids.cls, ids.sep, self.max_length, self.doc_stride)
            located = any(s is not None for s in example.get("spans", []))
            outside += located and all(w.start == 0 for w in mine)
            windows += mine
        self.record_stats(split, examples, len(windows), outside)
        return windows

    def record_stats(self, split: str, examples: list[Example], n_windows: int, outside: int) -> None:
        counts = alignment_counts(examples)
        stats = {"questions": len(examples), "windows": n_windows, "answers_fixed": counts["answers_fixed"],
                 "answers_missing": counts["answers_missing"], "answers_outside_windows": outside}
        self.data_stats.update({f"data/{split}_{k}": float(v) for k, v in stats.items()})
        if counts["answers"]:
            log.warning("%s %s: %d questions → %d windows; of %d answers, %d had an answer_start not pointing at "
                        "their text (fixed by searching the context near it) and %d do not occur in the context "
                        "(kept as references, dropped as training targets); %d located answers fit no window",
                        self.spec.name, split, len(examples), n_windows, counts["answers"], counts["answers_fixed"],
                        counts["answers_missing"], outside)

    def item_length(self, item: SpanWindow) -> int:
        return len(item.input_ids)

    def collate_fn(self) -> Callable[[list[Any]], Any]:
        return SpanCollator(self.special_ids.pad)


def span_predictions(examples: Sequence[Example],
                     candidates: Sequence[tuple[int, float, int, int]]) -> list[str]:
    """Per question, the text of its best-scoring window span: candidates are (question index, score,
    character start, character end), one per window. A question without a candidate predicts ""."""
    best: dict[int, tuple[float, int, int]] = {}
    for index, score, start, end in candidates:
        if start >= 0 and (index not in best or score > best[index][0]):
            best[index] = (score, start, end)
    return [str(e["context"][best[i][1] : best[i][2]]) if i in best else "" for i, e in enumerate(examples)]
