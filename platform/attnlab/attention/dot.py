"""Scaled dot-product attention (Vaswani et al. 2017, Eq. 1): softmax(QKᵀ/√dk) V.

Runs through `torch.nn.functional.scaled_dot_product_attention`, which picks a fused kernel
(flash / memory-efficient) where the device has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

import torch.nn.functional as F
from torch import Tensor

from attnlab.attention.base import (
    HF_FAMILIES,
    Attention,
    AttentionDims,
    QKVProjections,
    merge_heads,
    projection_flops,
)
from attnlab.attention.masks import AttentionMask
from attnlab.attention.registry import register


def sdpa(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask, dropout: float = 0.0) -> Tensor:
    """(B, H, T, dk), (B, H, T, dk), (B, H, T, dv) → (B, H, T, dv) under `mask`.

    A causal mask without padding goes in as `is_causal=True` alone (fused kernels skip the masked
    half); everything else as an explicit boolean mask. Never both: the math fallback (taken e.g.
    when dk != dv) rejects `attn_mask` together with `is_causal`."""
    if mask.is_causal and mask.key_padding is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.dense(q.shape[2], q.device), dropout_p=dropout)


@register
class DotAttention(Attention):
    name: ClassVar[str] = "dot"
    permutation_equivariant: ClassVar[bool] = True
    linear_memory: ClassVar[bool] = True  # fused SDPA kernels keep no T×T matrix (with dk == dv, no padding)
    exact_weights: ClassVar[frozenset[str]] = HF_FAMILIES | {"dot"}
    decoding: ClassVar[str] = "kv_cache"

    def __init__(self, dims: AttentionDims, options: object = None) -> None:
        super().__init__(dims, options)
        self.proj = QKVProjections(dims.d_model, dims.n_heads, dims.key_size, dims.n_heads, dims.value_size)

    @classmethod
    def flops_per_token(cls, dims: AttentionDims, seq_len: int, options: object = None) -> float:
        """Projections + QKᵀ (T·dk per head) + weights·V (T·dv per head)."""
        h, dk, dv = dims.n_heads, dims.key_size, dims.value_size
        return float(projection_flops(dims.d_model, h, dk, h, dv) + 2 * seq_len * h * (dk + dv))

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        q, k, v = self.proj.qkv(x)  # (B, H, T, dk), (B, H, T, dk), (B, H, T, dv)
        out = sdpa(q, k, v, mask, self.dims.dropout if self.training else 0.0)  # (B, H, T, dv)
        return self.proj.output(merge_heads(out))  # (B, T, D)

    def prefill(self, x: Tensor, mask: AttentionMask) -> tuple[Tensor, KVCache]:
        q, k, v = self.proj.qkv(x)
        out = sdpa(q, k, v, mask)
        return self.proj.output(merge_heads(out)), KVCache.full(k, v)

    def step(self, x_t: Tensor, state: KVCache | tuple[Tensor, Tensor] | None, mask_kind: str) -> tuple[
            Tensor, KVCache]:
        """KV cache: the new query attends to every cached key (all earlier tokens) and itself.
        Keys/values go into a preallocated buffer that doubles when full, so a step copies one
        token, not the whole cache. Stepping again from an older cache is safe: it branches off a copy."""
        q, k, v = self.proj.qkv(x_t)  # (B, H, 1, d)
        if state is None:
            state = KVCache.empty(k[:, :, :0], v[:, :, :0])
        elif not isinstance(state, KVCache):  # a bare (keys, values) pair
            state = KVCache.full(*state)
        cache = state.append(k, v)
        out = F.scaled_dot_product_attention(q, *cache.view())  # (B, H, 1, dv)
        return self.proj.output(merge_heads(out)), cache


class BufferFill:
    """How many positions of a shared K/V buffer hold data: the buffer's version counter. Every
    cache made from one buffer shares it; a cache whose length differs is stale (a later cache
    already wrote past its end) and must not write in place."""

    __slots__ = ("filled",)

    def __init__(self, filled: int) -> None:
        self.filled = filled


class KVCache(NamedTuple):
    """Key/value buffers (B, H, capacity, d) of which the first `length` positions are this cache's.

    Appending writes in place only when this cache is its buffer's tip (`fill.filled == length`);
    otherwise another branch already wrote there (e.g. two candidate tokens stepped from one
    cache), so it copies its `length` positions into a buffer of its own first (copy on branch).
    Positions below a buffer's fill are never rewritten, so no cache ever sees another's token."""

    keys: Tensor
    values: Tensor
    length: int
    fill: BufferFill

    @staticmethod
    def empty(k: Tensor, v: Tensor) -> KVCache:
        return KVCache(k, v, 0, BufferFill(0))

    @staticmethod
    def full(k: Tensor, v: Tensor) -> KVCache:
        """Exactly-sized (B, H, T, d) keys/values, all filled (straight from a prefill)."""
        return KVCache(k, v, k.shape[2], BufferFill(k.shape[2]))

    def append(self, k: Tensor, v: Tensor) -> KVCache:
        keys, values, n, fill = self
        new = n + k.shape[2]
        if fill.filled != n or new > keys.shape[2]:  # stale (branch) or full: move to a buffer of our own
            capacity = keys.shape[2] if new <= keys.shape[2] else max(new, 2 * keys.shape[2], 16)  # amortised O(1)
            keys, values = _realloc(keys, n, capacity), _realloc(values, n, capacity)
            fill = BufferFill(n)
        keys[:, :, n:new] = k
        values[:, :, n:new] = v
        fill.filled = new
        return KVCache(keys, values, new, fill)

    def view(self) -> tuple[Tensor, Tensor]:
        return self.keys[:, :, : self.length], self.values[:, :, : self.length]

    def map_tensors(self, fn: Callable[[Tensor], Tensor]) -> KVCache:
        """Apply `fn` to the buffers (e.g. beam reordering); the result owns fresh buffers."""
        return KVCache(fn(self.keys), fn(self.values), self.length, BufferFill(self.length))


def _realloc(buf: Tensor, n: int, capacity: int) -> Tensor:
    """A new (B, H, capacity, d) buffer holding the first n positions of `buf`."""
    out = buf.new_empty(*buf.shape[:2], capacity, buf.shape[3])
    out[:, :, :n] = buf[:, :, :n]
    return out
