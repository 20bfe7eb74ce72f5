"""Scaled dot-product attention (Vaswani et al. 2017, Eq. 1): softmax(QKᵀ/√dk) V.

Runs through `torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel
(flash / memory-efficient) where the device has one.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

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

    def step(self, x_t: Tensor, state: KVCache | tuple[Tensor, Tensor] | None, mask_kind: str) -> tuple[
            Tensor, KVCache]:
        """KV cache: the new query attends to every cached key (all earlier tokens) and itself.
        Keys/values go into a preallocated buffer that doubles when full, so a step copies one
        token, not the whole cache (a cache is consumed by `step`: keep no older copy around)."""
        q, k, v = self.proj.qkv(x_t)  # (B, H, 1, d)
        if state is None:
            state = KVCache(k[:, :, :0], v[:, :, :0], 0)
        elif isinstance(state, tuple) and not isinstance(state, KVCache):  # straight from prefill
            state = KVCache(state[0], state[1], state[0].shape[2])
        cache = state.append(k, v)
        out = F.scaled_dot_product_attention(q, *cache.view())  # (B, H, 1, dv)
        return self.proj.output(merge_heads(out)), cache


class KVCache(NamedTuple):
    """Key/value buffers (B, H, capacity, d) of which the first `length` positions are filled."""

    keys: Tensor
    values: Tensor
    length: int

    def append(self, k: Tensor, v: Tensor) -> KVCache:
        keys, values, n = self
        if n + k.shape[2] > keys.shape[2]:  # grow geometrically: amortised O(1) copies per token
            extra = max(n + k.shape[2], 2 * keys.shape[2], 16) - keys.shape[2]
            keys = torch.cat([keys, keys.new_empty(*keys.shape[:2], extra, keys.shape[3])], dim=2)
            values = torch.cat([values, values.new_empty(*values.shape[:2], extra, values.shape[3])], dim=2)
        keys[:, :, n : n + k.shape[2]] = k
        values[:, :, n : n + v.shape[2]] = v
        return KVCache(keys, values, n + k.shape[2])

    def view(self) -> tuple[Tensor, Tensor]:
        return self.keys[:, :, : self.length], self.values[:, :, : self.length]
