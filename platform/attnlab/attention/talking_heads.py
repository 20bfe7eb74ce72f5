"""Talking-heads attention — Shazeer et al. 2020 (arXiv 2003.02436, Alg. "TalkingHeadsAttention").

Learned head-mixing matrices around the softmax:
    J = QKᵀ/√dk over h_k logit heads (B, h_k, T, T)
    L = P_l · J   mixes logit heads into h heads      (P_l: h_k × h)
    W = softmax(L) over keys
    U = P_w · W   mixes weight heads into h_v heads   (P_w: h × h_v)
    O = U V over h_v value heads
Both mixers start as the identity (rectangular `eye` when sizes differ), so at init with
h_k = h = h_v the layer equals `dot` exactly — a free parity test. Needs the explicit T×T
matrix, so it cannot run through a fused SDPA kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from attnlab.attention.base import (
    Attention,
    AttentionDims,
    QKVProjections,
    masked_softmax,
    merge_heads,
    scaled_logits,
)
from attnlab.attention.registry import register
from attnlab.model.masks import AttentionMask


@dataclass(frozen=True)
class TalkingHeadsOptions:
    logit_heads: int = 0  # h_k heads for QKᵀ; 0 → n_heads
    weight_heads: int = 0  # h_v heads applied to the values; 0 → n_heads

    def __post_init__(self) -> None:
        if self.logit_heads < 0 or self.weight_heads < 0:
            raise ValueError("logit_heads and weight_heads must be >= 0 (0 = n_heads)")


@register
class TalkingHeadsAttention(Attention):
    name: ClassVar[str] = "talking_heads"
    Options: ClassVar[type] = TalkingHeadsOptions
    permutation_equivariant: ClassVar[bool] = True

    def __init__(self, dims: AttentionDims, options: TalkingHeadsOptions | None = None) -> None:
        super().__init__(dims, options)
        o: TalkingHeadsOptions = self.options
        h = dims.n_heads
        self.h_k, self.h_v = o.logit_heads or h, o.weight_heads or h
        self.proj = QKVProjections(dims.d_model, self.h_k, dims.key_size, self.h_v, dims.value_size)
        self.pre_mix = nn.Parameter(torch.empty(self.h_k, h))  # P_l
        self.post_mix = nn.Parameter(torch.empty(h, self.h_v))  # P_w
        nn.init.eye_(self.pre_mix)
        nn.init.eye_(self.post_mix)

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        q, k, v = self.proj.qkv(x)  # (B, h_k, T, dk), (B, h_k, T, dk), (B, h_v, T, dv)
        logits = scaled_logits(q, k)  # (B, h_k, T, T)
        logits = torch.einsum("bkij,kh->bhij", logits, self.pre_mix)  # (B, h, T, T)
        probs = masked_softmax(logits, mask.dense(x.shape[1], x.device))
        probs = torch.einsum("bhij,hv->bvij", probs, self.post_mix)  # (B, h_v, T, T)
        out = self.dropout(probs) @ v  # (B, h_v, T, dv)
        return self.proj.output(merge_heads(out))  # (B, T, D)
