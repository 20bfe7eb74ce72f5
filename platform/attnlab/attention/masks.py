"""Attention masks as pure functions, plus the small `AttentionMask` value every variant receives.

Convention everywhere: boolean, ``True`` = this query may attend to this key.

Three kinds make one model an encoder, a left-to-right LM or a UniLM seq2seq model
(Dong et al. 2019, "Unified Language Model Pre-training", Fig. 1):
- ``bidirectional``: every real token sees every real token;
- ``causal``: token i sees tokens j <= i;
- ``prefix``: built from segment ids (0 = source, 1 = target); source sees the whole source,
  target sees the source plus the target up to itself.

Dense variants read ``mask.dense()``; linear attention cannot take an arbitrary (T, T) matrix and
reads the structure (kind, key padding, segment ids) instead — that is why the mask travels as a
structured value rather than as a bare tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

MASK_KINDS = ("bidirectional", "causal", "prefix")


def causal_mask(seq_len: int, device: torch.device | None = None) -> Tensor:
    """(T, T) lower-triangular: query i may attend key j iff j <= i."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def prefix_mask(segment_ids: Tensor) -> Tensor:
    """UniLM seq2seq mask from segment ids (B, T) → (B, T, T).

    With c = cumsum(segment_ids), query i may attend key j iff c[j] <= c[i]: a source token
    (c = 0) sees exactly the source, a target token sees the source and the target up to itself.
    Requires the source to be a prefix (segment ids non-decreasing); see `check_prefix_segments`.
    """
    c = segment_ids.long().cumsum(dim=-1)  # (B, T)
    return c.unsqueeze(-2) <= c.unsqueeze(-1)  # (B, T_q, T_k)


def check_prefix_segments(segment_ids: Tensor, key_padding: Tensor | None) -> None:
    """Raise if the source is not a contiguous prefix of each sequence (0…0 1…1, padding after)."""
    seg = segment_ids.long()
    if key_padding is not None:
        # Padding positions continue the last segment so they never break monotonicity.
        seg = torch.where(key_padding, seg, torch.ones_like(seg))
    if seg.numel() and bool((seg[:, 1:] < seg[:, :-1]).any()):
        raise ValueError(
            "prefix (UniLM) mask needs segment ids of the form 0…0 1…1 (source then target); "
            "got a target token before a source token"
        )


@dataclass
class AttentionMask:
    """What an attention layer may look at.

    ``key_padding`` (B, T) marks real tokens (True) — None means no padding;
    ``segment_ids`` (B, T) is required for ``kind='prefix'``.
    """

    kind: str = "bidirectional"
    key_padding: Tensor | None = None
    segment_ids: Tensor | None = None
    _dense: Tensor | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {self.kind!r}; valid: {', '.join(MASK_KINDS)}")
        if self.kind == "prefix":
            if self.segment_ids is None:
                raise ValueError("mask kind 'prefix' needs segment_ids (0 = source, 1 = target)")
            check_prefix_segments(self.segment_ids, self.key_padding)

    @property
    def is_causal(self) -> bool:
        return self.kind == "causal"

    def dense(self, seq_len: int, device: torch.device | None = None) -> Tensor | None:
        """(B or 1, 1, T, T) boolean mask for dense attention, or None when nothing is masked.

        Query rows that would see no key at all (only possible for padding queries) are opened up
        entirely, so softmax never produces NaN; their outputs are ignored downstream anyway.
        """
        if self._dense is not None and self._dense.shape[-1] == seq_len:
            return self._dense
        allowed: Tensor | None = None
        if self.kind == "causal":
            allowed = causal_mask(seq_len, device)[None, None]  # (1, 1, T, T)
        elif self.kind == "prefix":
            assert self.segment_ids is not None
            allowed = prefix_mask(self.segment_ids)[:, None]  # (B, 1, T, T)
        if self.key_padding is not None:
            keys = self.key_padding[:, None, None, :]  # (B, 1, 1, T)
            allowed = keys if allowed is None else allowed & keys
        if allowed is None:
            return None
        allowed = allowed.expand(allowed.shape[0], 1, seq_len, seq_len)
        empty_row = ~allowed.any(dim=-1, keepdim=True)
        allowed = allowed | empty_row
        self._dense = allowed
        return allowed
