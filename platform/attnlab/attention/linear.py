"""Kernel linear attention — Katharopoulos et al. 2020, "Transformers are RNNs" (Eq. 4–9).

    V'_i = φ(Q_i)ᵀ Σ_j φ(K_j) V_jᵀ / (φ(Q_i)ᵀ Σ_j φ(K_j) + eps)

Associativity gives O(T) time and memory. Forms implemented here:
- non-causal: the sums run over all real (non-padding) keys;
- causal, chunked (training default): exact masked attention inside each chunk of C tokens plus a
  running state carried between chunks — O(T·C + T·dk·dv / C) memory instead of the cumsum form's
  O(T·dk·dv);
- causal, cumsum: the paper's prefix-sum form, materialising every running state (a reference);
- causal, recurrent `step` for decoding: constant work per generated token;
- prefix (UniLM): a source query reads the sum over the whole source; a target query reads the
  source sum plus a causal running sum over the target — which, with the source first, is exactly
  the causal sum at its own position. (The reference library rejects this mask.)
Sums are accumulated in fp32 (or fp64 for fp64 inputs) even under autocast: fp16 sums over T overflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.attention.base import Attention, AttentionDims, QKVProjections, merge_heads, projection_flops
from attnlab.attention.linear_kernels import (
    FEATURE_MAPS,
    feature_map,
    fused_qkv_weights,
    linear_noncausal_fused,
    recurrent_step,
)
from attnlab.attention.masks import AttentionMask
from attnlab.attention.registry import register


@dataclass(frozen=True)
class LinearOptions:
    feature_map: str = "elu"  # elu+1 (paper), relu, or softmax over each head's features of q and k
    eps: float = 1e-6
    causal_impl: str = "chunked"  # chunked | cumsum
    chunk_size: int = 64
    nan_guard: bool = False  # debugging aid: zero non-finite outputs and count them (forward and step)

    def __post_init__(self) -> None:
        if self.feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {self.feature_map!r}")
        if self.causal_impl not in ("chunked", "cumsum"):
            raise ValueError(f"causal_impl must be 'chunked' or 'cumsum', got {self.causal_impl!r}")
        if self.eps <= 0 or self.chunk_size < 1:
            raise ValueError("eps must be > 0 and chunk_size >= 1")


def with_ones(v: Tensor) -> Tensor:
    """(…, T, dv) → (…, T, dv + 1): the extra column of ones makes every product with the values
    also produce the normaliser, so numerator and denominator come out of one matmul."""
    return F.pad(v, (0, 1), value=1.0)


def split_num_den(out: Tensor, eps: float) -> Tensor:
    return out[..., :-1] / (out[..., -1:] + eps)


def linear_noncausal(q: Tensor, k: Tensor, v: Tensor, eps: float) -> Tensor:
    """φq, φk (B, H, T, dk), v (B, H, T, dv) with padding keys already zeroed → (B, H, T, dv)."""
    kv = k.transpose(-2, -1) @ with_ones(v)  # (B, H, dk, dv+1): Σ φk vᵀ and Σ φk side by side
    return split_num_den(q @ kv, eps)  # (B, H, T, dv)


def linear_causal_cumsum(q: Tensor, k: Tensor, v: Tensor, eps: float) -> Tensor:
    """Prefix-sum form: S_i = Σ_{j<=i} φk_j [v_j, 1]ᵀ materialised for every i (a reference)."""
    s = torch.einsum("bhtk,bhtv->bhtkv", k, with_ones(v)).cumsum(dim=2)  # (B, H, T, dk, dv+1)
    return split_num_den(torch.einsum("bhtk,bhtkv->bhtv", q, s), eps)


def linear_causal_chunked(q: Tensor, k: Tensor, v: Tensor, eps: float, chunk: int) -> Tensor:
    """Chunked causal form: exact lower-triangular attention within chunks, running state across."""
    b, h, t, dk = q.shape
    v = with_ones(v)
    dv = v.shape[-1]
    n = -(-t // chunk)
    pad = n * chunk - t
    if pad:  # zero keys/values contribute nothing; padded query rows are cut off below
        q, k, v = (F.pad(a, (0, 0, 0, pad)) for a in (q, k, v))
    qc = q.view(b, h, n, chunk, dk)  # (B, H, N, C, dk)
    kc = k.view(b, h, n, chunk, dk)
    vc = v.view(b, h, n, chunk, dv)  # (B, H, N, C, dv+1)
    tril = torch.ones(chunk, chunk, dtype=q.dtype, device=q.device).tril()
    out = ((qc @ kc.transpose(-2, -1)) * tril) @ vc  # (B, H, N, C, dv+1): within-chunk part
    s = kc.transpose(-2, -1) @ vc  # (B, H, N, dk, dv+1) per-chunk state
    out = out + qc @ exclusive_cumsum(s, dim=2)  # + the state of all earlier chunks
    return split_num_den(out, eps).reshape(b, h, n * chunk, dv - 1)[:, :, :t]


def exclusive_cumsum(s: Tensor, dim: int) -> Tensor:
    """Σ_{c' < c} s_c' along `dim`: the inclusive cumsum shifted by one. Never `cumsum − s`, whose
    rounding lets s_c (later tokens) change the sum of the earlier chunks (a causal leak)."""
    s = s.movedim(dim, 0)
    out = torch.zeros_like(s)
    out[1:] = s[:-1].cumsum(dim=0)
    return out.movedim(0, dim)


@register
class LinearAttention(Attention):
    name: ClassVar[str] = "linear"
    Options: ClassVar[type] = LinearOptions
    permutation_equivariant: ClassVar[bool] = True
    linear_memory: ClassVar[bool] = True
    decoding: ClassVar[str] = "recurrent"

    def __init__(self, dims: AttentionDims, options: LinearOptions | None = None) -> None:
        super().__init__(dims, options)
        self.proj = QKVProjections(dims.d_model, dims.n_heads, dims.key_size, dims.n_heads, dims.value_size)
        self.nan_guard_events: Tensor
        self.register_buffer("nan_guard_events", torch.zeros((), dtype=torch.long), persistent=False)

    @classmethod
    def flops_per_token(cls, dims: AttentionDims, seq_len: int, options: object = None) -> float:
        """Projections + per head: the state Σ φk vᵀ (dk·dv), the numerator φqᵀS (dk·dv) and the normaliser
        φq·z (dk) — independent of `seq_len` (Eq. 5; the recurrent form costs the same per token)."""
        h, dk, dv = dims.n_heads, dims.key_size, dims.value_size
        return float(projection_flops(dims.d_model, h, dk, h, dv) + h * (4 * dk * dv + 2 * dk))

    def _features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.proj.qkv(x)  # (B, H, T, dk), (B, H, T, dk), (B, H, T, dv)
        acc = torch.promote_types(q.dtype, torch.float32)
        fm = self.options.feature_map
        return feature_map(q.to(acc), fm), feature_map(k.to(acc), fm), v.to(acc)

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        opts: LinearOptions = self.options
        if mask.kind == "bidirectional":  # O(T)-memory autograd function (linear_kernels.py)
            b, t, _ = x.shape
            with torch.autocast(device_type=x.device.type, enabled=False):
                acc = torch.promote_types(x.dtype, torch.float32)
                p, h = self.proj, self.n_heads
                q = p.query(x).to(acc).view(b, t, h, -1)  # (B, T, H, dk): the projection's own layout
                k = p.key(x).to(acc).view(b, t, h, -1)
                v = p.value(x).to(acc).view(b, t, h, -1)  # (B, T, H, dv)
                keep = None if mask.key_padding is None else mask.key_padding[:, :, None].to(acc)  # (B, T, 1)
                out = self._guard(linear_noncausal_fused(q, k, v, keep, opts.feature_map, opts.eps))
            return self.proj.output(out.view(b, t, -1).to(x.dtype))  # (B, T, D): no head merge copy
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, k, v = self._features(x)
            if mask.key_padding is not None:
                keep = mask.key_padding[:, None, :, None].to(k.dtype)  # (B, 1, T, 1)
                k, v = k * keep, v * keep
            if mask.kind == "bidirectional":
                out = linear_noncausal(q, k, v, opts.eps)
            else:
                out = self._causal(q, k, v)
                if mask.kind == "prefix":
                    assert mask.segment_ids is not None
                    source = (mask.segment_ids == 0)[:, None, :, None]  # (B, 1, T, 1)
                    src = source.to(k.dtype)
                    out_src = linear_noncausal(q, k * src, v * src, opts.eps)
                    out = torch.where(source, out_src, out)
            out = self._guard(out)
        # No attention-dropout here: there is no attention matrix to drop from.
        return self.proj.output(merge_heads(out.to(x.dtype)))  # (B, T, D)

    def _causal(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        opts: LinearOptions = self.options
        if opts.causal_impl == "cumsum":
            return linear_causal_cumsum(q, k, v, opts.eps)
        out = linear_causal_chunked(q, k, v, opts.eps, opts.chunk_size)
        if opts.nan_guard and not bool(torch.isfinite(out).all()):
            # Inside a chunk a non-finite later token reaches earlier rows (0·inf = nan in the masked
            # matmul); the prefix-sum form keeps it causal, so the guard zeroes what `step` zeroes.
            return linear_causal_cumsum(q, k, v, opts.eps)
        return out

    def _guard(self, out: Tensor) -> Tensor:
        """With `nan_guard`: count the non-finite entries (on device, no host sync) and zero them."""
        if not self.options.nan_guard:
            return out
        self.nan_guard_events += (~torch.isfinite(out)).sum()
        return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    # ---- recurrent decoding -------------------------------------------------------------
    def init_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Empty RNN state S̃ = [S, z] (B, H, dk, dv+1): Σ φk vᵀ and, as the last column, Σ φk."""
        acc = torch.promote_types(dtype, torch.float32)
        return torch.zeros(batch, self.n_heads, self.key_size, self.value_size + 1, device=device, dtype=acc)

    def prefill(self, x: Tensor, mask: AttentionMask) -> tuple[Tensor, Tensor]:
        """Prompt pass; the state is the sum over every prompt token (a UniLM source, or an LM prefix)."""
        out = self(x, mask)
        with torch.autocast(device_type=x.device.type, enabled=False):
            _, k, v = self._features(x)
            if mask.key_padding is not None:
                keep = mask.key_padding[:, None, :, None].to(k.dtype)
                k, v = k * keep, v * keep
            return out, k.transpose(-2, -1) @ with_ones(v)  # (B, H, dk, dv+1)

    def step(self, x_t: Tensor, state: Tensor | None, mask_kind: str = "causal") -> tuple[Tensor, Tensor]:
        """One causal step: x_t (B, 1, D) → (B, 1, D), updating S̃ — O(1) in the length so far."""
        if state is None:
            state = self.init_state(x_t.shape[0], x_t.device, x_t.dtype)
        opts: LinearOptions = self.options
        if x_t.dtype == state.dtype and not torch.is_grad_enabled() and not torch.is_autocast_enabled():
            # Inference: one fused q/k/v matmul and two batched matmuls (linear_kernels.recurrent_step).
            weight, bias = self._fused_qkv()
            out, state = recurrent_step(x_t, weight, bias, state, self.n_heads, self.key_size, opts.feature_map,
                                        opts.eps)
            return F.linear(self._guard(out), self.proj.output.weight, self.proj.output.bias), state
        with torch.autocast(device_type=x_t.device.type, enabled=False):
            q, k, v = self._features(x_t)  # (B, H, 1, d)
            state = state + k.transpose(-2, -1) @ with_ones(v)  # (B, H, dk, dv+1)
            out = self._guard(split_num_den(q @ state, opts.eps))  # the same guard as forward
        return self.proj.output(merge_heads(out.to(x_t.dtype))), state

    def _fused_qkv(self) -> tuple[Tensor, Tensor]:
        """The fused decoding projection, rebuilt only when a projection tensor changed (its version
        counter moves on every in-place update, e.g. an optimiser step; its pointer on `.to()`)."""
        p = self.proj
        tensors = (p.query.weight, p.query.bias, p.key.weight, p.key.bias, p.value.weight, p.value.bias)
        key = tuple((t._version, t.data_ptr()) for t in tensors)
        cached = self.__dict__.get("_qkv_cache")
        if cached is None or cached[0] != key:
            cached = (key, *fused_qkv_weights(p.query, p.key, p.value, self.n_heads))
            self.__dict__["_qkv_cache"] = cached  # not a buffer: derived data, never in the state dict
        return cached[1], cached[2]

    def extra_metrics(self) -> dict[str, float]:
        if not self.options.nan_guard:
            return {}
        return {"nan_guard_events": float(self.nan_guard_events.item())}

