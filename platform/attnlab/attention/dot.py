"""Scaled dot-product attention (Vaswani et al. 2017, Eq. 1): softmax(QKᵀ/√dk) V.

Runs through `torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel
(flash / memory-efficient) where the device has one.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.attention.base import Attention, AttentionDims, QKVProjections, merge_heads
from attnlab.attention.registry import register
from attnlab.model.masks import AttentionMask


@register
class DotAttention(Attention):
    name: ClassVar[str] = "dot"
    permutation_equivariant: ClassVar[bool] = True

    def __init__(self, dims: AttentionDims, options: object = None) -> None:
        super().__init__(dims, options)
        self.proj = QKVProjections(dims.d_model, dims.n_heads, dims.key_size, dims.n_heads, dims.value_size)

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        q, k, v = self.proj.qkv(x)  # (B, H, T, dk), (B, H, T, dk), (B, H, T, dv)
        t = x.shape[1]
        dropout = self.dims.dropout if self.training else 0.0
        if mask.is_causal and mask.key_padding is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.dense(t, x.device), dropout_p=dropout)
        return self.proj.output(merge_heads(out))  # (B, T, D)

    def prefill(self, x: Tensor, mask: AttentionMask) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        q, k, v = self.proj.qkv(x)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.dense(x.shape[1], x.device),
                                             is_causal=mask.is_causal and mask.key_padding is None)
        return self.proj.output(merge_heads(out)), (k, v)

    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor] | None, mask_kind: str) -> tuple[
            Tensor, tuple[Tensor, Tensor]]:
        """KV cache: the new query attends to every cached key (all earlier tokens) and itself."""
        q, k, v = self.proj.qkv(x_t)  # (B, H, 1, d)
        if state is not None:
            k = torch.cat([state[0], k], dim=2)  # (B, H, T+1, dk)
            v = torch.cat([state[1], v], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, 1, dv)
        return self.proj.output(merge_heads(out)), (k, v)
