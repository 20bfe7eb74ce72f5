"""Decoding controls: rules applied to next-token logits before a token is chosen.

- Repetition penalty (CTRL, Keskar et al. 2019, §4.1; in the form every generation library uses):
  a token that already occurs in the continuation has its logit divided by `penalty` when
  positive and multiplied by it when negative, so it always becomes less likely (penalty > 1).
- No repeated n-gram (Paulus et al. 2018): a token that would complete an n-gram already present in
  the continuation gets logit −inf, so no n-gram occurs twice.
- Minimum length: EOS gets logit −inf while fewer than `min_new_tokens` tokens were generated.

The controls read only the generated continuation, never the prompt: a seq2seq source (an abstract
whose words the keywords copy) must stay copyable, and a shared prompt would penalise every row
alike. Beam search applies them before its log-softmax, so they change the beam scores as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DecodingControls:
    repetition_penalty: float = 1.0  # 1.0 = off; > 1 discourages tokens already generated
    no_repeat_ngram_size: int = 0  # 0 = off; n ≥ 1 forbids any n-gram to occur twice
    min_new_tokens: int = 0  # EOS is forbidden before this many tokens were generated
    eos_id: int | None = None

    def validate(self) -> None:
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0 or self.min_new_tokens < 0:
            raise ValueError("no_repeat_ngram_size and min_new_tokens must be >= 0")


def apply_repetition_penalty(logits: Tensor, history: Tensor, penalty: float) -> Tensor:
    """logits (N, V), history (N, L) token ids → logits with every seen token penalised once."""
    if penalty == 1.0 or history.shape[1] == 0:
        return logits
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, history, True)  # (N, V)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def banned_ngram_tokens(history: Tensor, n: int, vocab_size: int) -> Tensor:
    """(N, V) bool: tokens that would complete an n-gram already present in history (N, L)."""
    rows, length = history.shape
    banned = torch.zeros(rows, vocab_size, dtype=torch.bool, device=history.device)
    if n <= 0 or length < n:  # no complete n-gram yet
        return banned
    if n == 1:
        return banned.scatter_(1, history, True)
    windows = history.unfold(1, n, 1)  # (N, L-n+1, n): every n-gram so far
    current = history[:, length - n + 1 :]  # (N, n-1): the prefix the next token would extend
    match = (windows[:, :, :-1] == current[:, None]).all(-1)  # (N, L-n+1)
    row, start = match.nonzero(as_tuple=True)
    banned[row, windows[row, start, -1]] = True
    return banned


def apply_controls(logits: Tensor, history: Tensor, controls: DecodingControls) -> Tensor:
    """Next-token logits (N, V) after the generated tokens history (N, L) → controlled logits."""
    logits = apply_repetition_penalty(logits, history, controls.repetition_penalty)
    if controls.no_repeat_ngram_size > 0:
        banned = banned_ngram_tokens(history, controls.no_repeat_ngram_size, logits.shape[-1])
        logits = logits.masked_fill(banned, float("-inf"))
    if controls.eos_id is not None:
        logits = logits.clone()
        if history.shape[1] < controls.min_new_tokens:
            logits[:, controls.eos_id] = float("-inf")
        stuck = torch.isneginf(logits).all(-1)  # every token forbidden (a tiny vocabulary): end the row
        logits[stuck, controls.eos_id] = 0.0
    return logits
