"""Fused attention with a learned additive bias: softmax(QKᵀ·scale + bias) V without a T×T matrix in
the forward pass and with the bias's gradient in the backward pass.

Synthesizer mixtures with dot (Tay et al. 2020, §3: random + dot, dense + dot) are exactly this: the
synthesized logits are an additive bias on the dot-product logits (the bias itself is T×T; what the
kernel saves are the probabilities, their gradient and the explicit passes). `F.scaled_dot_product_attention`
takes a float `attn_mask`, but on CPU only its math fallback differentiates through the mask: with a
bias that needs a gradient it materialises every T×T tensor, which is what made the synthesizers
slow. Here instead:

- CUDA: SDPA itself — the memory-efficient kernel returns the bias gradient;
- CPU: the flash kernel runs the forward (saving only the output and the row log-sum-exp), and
  the backward recomputes the softmax one block of query rows at a time (`_bias_backward`):
      P = exp(S − lse),  dP = dO Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O)),
      dQ = dS K·scale,  dK = dSᵀ Q·scale,  dV = Pᵀ dO,  dbias = dS (summed over broadcast dims)
  — the FlashAttention-2 backward (Dao 2023, Alg. 2) with dS kept as the bias gradient.
Attention dropout is not supported here; callers fall back to their explicit form while it is on.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

BLOCK_ELEMENTS = 1 << 20  # query rows per backward block: (B·H·rows·T) ≈ 1M elements (4 MiB in fp32)


def _flash_forward(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """(out (B, H, T, dv), lse (B, H, T)) from the CPU flash kernel."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=bias, scale=scale)
    return out, lse


def _reduce_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum a gradient over the dimensions that `shape` broadcasts (size 1 there)."""
    dims = [d for d, n in enumerate(shape) if n == 1 and grad.shape[d] != 1]
    return grad.sum(dim=dims, keepdim=True) if dims else grad


def _bias_backward(g: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, alpha: float, out: Tensor, lse: Tensor,
                   scale: float, need_bias: bool) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor]:
    """Blockwise backward over query rows: memory O(block·T), never the whole (B, H, T, T). The
    effective bias is alpha·bias; returns the gradients of q, k, v, bias and alpha.

    Two subtractions ride inside the matmuls as an extra column: [q·scale, −lse]·[k, 1]ᵀ = S − lse
    and [dO, −D]·[v, 1]ᵀ = dP − D, so a block costs 5 matmuls and 3 elementwise passes."""
    b, h, t, _ = q.shape
    n, keys = b * h, k.shape[2]
    rows = max(1, BLOCK_ELEMENTS // max(1, n * keys))
    delta = (g * out).sum(-1, keepdim=True)  # (B, H, T, 1): rowsum(dO ⊙ O) = rowsum(P ⊙ dP)
    q_ext = torch.cat([q * scale, -lse.unsqueeze(-1)], dim=-1).reshape(n, t, -1)  # (BH, T, dk+1)
    g_ext = torch.cat([g, -delta], dim=-1).reshape(n, t, -1)  # (BH, T, dv+1)
    k_ext = F.pad(k, (0, 1), value=1.0).reshape(n, keys, -1).transpose(1, 2)  # (BH, dk+1, T)
    v_ext = F.pad(v, (0, 1), value=1.0).reshape(n, keys, -1).transpose(1, 2)  # (BH, dv+1, T)
    k_scaled = (k * scale).reshape(n, keys, -1)  # (BH, T, dk)
    q3, g3 = q.reshape(n, t, -1), g.reshape(n, t, -1)
    dk = torch.zeros(n, keys, k.shape[-1], dtype=k.dtype, device=k.device)  # (BH, T, dk)
    dv = torch.zeros(n, keys, v.shape[-1], dtype=v.dtype, device=v.device)  # (BH, T, dv)
    dq: list[Tensor] = []
    dbias = torch.empty((*bias.shape[:2], t, keys), dtype=bias.dtype, device=bias.device) if need_bias else None
    batch_shared = need_bias and bias.shape[0] == 1 and b > 1
    dalpha = torch.zeros((), dtype=torch.float64, device=bias.device)
    # Two block buffers reused by every block: fresh (B·H, r, T) outputs per block cost page faults
    # and cache misses that showed up as 3× slower matmuls.
    buf_p, buf_ds = (q.new_empty(n * min(rows, t) * keys) for _ in range(2))
    for i in range(0, t, rows):
        j = min(t, i + rows)
        size = n * (j - i) * keys
        # Row blocks of (B·H, T, d) tensors are strided across the batch: batched GEMMs run ~1.4×
        # faster on a contiguous copy (a (B·H, r, d) copy costs far less than the (B·H, r, T) product).
        qe, ge, qi, gi = (a[:, i:j].contiguous() for a in (q_ext, g_ext, q3, g3))
        p = torch.bmm(qe, k_ext, out=buf_p[:size].view(n, j - i, keys))  # S − lse, without the bias
        p = p.view(b, h, j - i, keys).add_(bias[:, :, i:j], alpha=alpha).exp_().view(n, j - i, keys)  # P
        ds = torch.bmm(ge, v_ext, out=buf_ds[:size].view(n, j - i, keys)).mul_(p)  # (dP − D) ⊙ P
        dv.baddbmm_(p.transpose(1, 2), gi)
        dk.baddbmm_(ds.transpose(1, 2), qi, alpha=scale)
        dq.append(torch.bmm(ds, k_scaled))
        if dbias is not None:  # written in place: no (B, H, T, T) gradient is ever assembled from parts
            block, part = ds.view(b, h, j - i, keys), dbias[:, :, i:j]
            if batch_shared:
                torch.sum(block, dim=0, keepdim=True, out=part)
            else:
                part.copy_(_reduce_to(block, part.shape))
            dalpha += (part * bias[:, :, i:j]).sum()  # ∂/∂alpha while the block is in cache (finite bias: `masked`)
            part.mul_(alpha)
    dq_all = torch.cat(dq, dim=1).view(b, h, t, -1)
    return dq_all, dk.view(b, h, keys, -1), dv.view(b, h, keys, -1), dbias, dalpha


class _BiasedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float,
                alpha: Tensor | None) -> Tensor:
        a = 1.0 if alpha is None else float(alpha)  # a host value: this path runs on CPU only
        out, lse = _flash_forward(q, k, v, bias if alpha is None else bias * a, scale)
        ctx.save_for_backward(q, k, v, bias, out, lse)
        ctx.scale, ctx.alpha = scale, a
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, bias, out, lse = ctx.saved_tensors
        need_bias = ctx.needs_input_grad[3] or ctx.needs_input_grad[5]
        dq, dk, dv, dbias, dalpha = _bias_backward(g.contiguous(), q, k, v, bias, ctx.alpha, out, lse, ctx.scale,
                                                   need_bias)
        return dq, dk, dv, dbias, None, dalpha.to(bias.dtype) if ctx.needs_input_grad[5] else None


def masked(bias: Tensor, allowed: Tensor | None) -> Tensor:
    """The bias with disallowed keys at a large finite negative instead of −inf: exp() still gives an
    exact 0 there, and alpha's gradient Σ ∂S ⊙ bias stays finite (0 · −inf would be nan)."""
    if allowed is None:
        return bias
    return bias.masked_fill(~allowed, torch.finfo(bias.dtype).min / 4)


def attend_with_bias(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float, alpha: Tensor | None = None) -> Tensor:
    """softmax(q kᵀ·scale + alpha·bias) v → (B, H, T, dv).

    q, k (B, H, T, dk), v (B, H, T, dv); bias broadcastable to (B, H, T, T) with disallowed keys at
    −inf, or at `masked`'s finite stand-in when alpha is given (every row needs one allowed key);
    alpha a positive scalar tensor (a mixture weight) or None for 1. Passing alpha separately saves
    autograd the full T×T passes of alpha·bias: its gradient is summed block by block in the backward."""
    if q.device.type != "cpu" or torch.is_autocast_enabled():
        bias = bias if alpha is None else alpha * bias
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=scale)
    bias = bias.expand(bias.shape[0], bias.shape[1], q.shape[2], k.shape[2])
    dk, dv = q.shape[-1], v.shape[-1]
    if dk != dv:  # the CPU flash kernel wants one head size: zero columns change neither logits nor outputs
        width = max(dk, dv)
        q, k, v = (F.pad(a, (0, width - a.shape[-1])) for a in (q, k, v))
        return _BiasedAttention.apply(q, k, v, bias, scale, alpha)[..., :dv]  # type: ignore[no-any-return]
    return _BiasedAttention.apply(q, k, v, bias, scale, alpha)  # type: ignore[no-any-return]
