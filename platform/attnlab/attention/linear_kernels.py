"""Fast paths of kernel linear attention (Katharopoulos et al. 2020, Eq. 4–6; the layer is linear.py).

Non-causal training, `linear_noncausal_fused`: a custom autograd function that keeps only the raw
projections q, k, v (which the projections produced anyway) and the (dk × dv) state for backward,
recomputing φ(q), φ(k) there — so the layer stores no more than dot attention's fused kernel
does. With S = Σ_j φk_j v_jᵀ, z = Σ_j φk_j, n_i = φq_iᵀ S, d_i = φq_i·z + eps, out_i = n_i / d_i
and g_i = ∂L/∂out_i:
    a_i = g_i / d_i,   c_i = −(a_i·n_i) / d_i            (∂L/∂n_i and ∂L/∂d_i)
    ∂φq_i = S a_i + c_i z,   ∂S = Σ_i φq_i a_iᵀ,   ∂z = Σ_i c_i φq_i
    ∂φk_j = ∂S v_j + ∂z,     ∂v_j = ∂Sᵀ φk_j
It works in the projections' own (B, T, H, d) layout, one head and one block of `ROWS` tokens at a
time: every matmul reads a strided (B, R, d) view of one head directly (no head-transpose copies)
and the temporaries are one such slice (which is what keeps its peak below dot's).

Decoding, `recurrent_step`: one fused q/k/v projection whose value part carries a constant-1
column per head (zero weights, bias 1), so the state S̃ = Σ_j φk_j [v_j, 1]ᵀ (B, H, dk, dv+1) holds
numerator and normaliser together and a token costs one addmm, one baddbmm and one bmm.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

FEATURE_MAPS = ("elu", "relu", "softmax")


def feature_map(x: Tensor, kind: str) -> Tensor:
    """φ: a positive feature map applied per head (positivity keeps the normaliser > 0).
    elu(x) + 1 is computed as exp(min(x, 0)) + max(x, 0): the same function, without expm1 (slow on CPU).
    In place on its own temporaries when autograd is off (inside the custom functions, decoding)."""
    if kind == "elu":
        if torch.is_grad_enabled() and x.requires_grad:
            return torch.exp(x.clamp(max=0)) + F.relu(x)
        return x.clamp(max=0).exp_().add_(F.relu(x))
    if kind == "relu":
        return F.relu(x)
    return torch.softmax(x, dim=-1)


def feature_map_backward(x: Tensor, grad: Tensor, kind: str) -> Tensor:
    """∂L/∂x from ∂L/∂φ(x), recomputing what it needs from x (overwrites `grad`)."""
    if kind == "elu":  # φ' = 1 for x > 0, eˣ otherwise: exp(min(x, 0))
        return grad.mul_(x.clamp(max=0).exp_())
    if kind == "relu":
        return grad.mul_(x > 0)
    phi = torch.softmax(x, dim=-1)
    return grad.sub_((grad * phi).sum(-1, keepdim=True)).mul_(phi)


ROWS = 512  # tokens per block: temporaries are one head's (B, ROWS, d) slice


def _blocks(t: int) -> list[slice]:
    return [slice(i, min(t, i + ROWS)) for i in range(0, t, ROWS)]


class _LinearNonCausal(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, keep: Tensor | None, kind: str, eps: float) -> Tensor:
        b, t, h, _ = q.shape
        out = v.new_empty(b, t, h, v.shape[-1])  # (B, T, H, dv)
        states: list[Tensor] = []
        for i in range(h):
            s = q.new_zeros(b, k.shape[-1], v.shape[-1])  # (B, dk, dv): Σ φk vᵀ
            z = q.new_zeros(b, k.shape[-1], 1)  # (B, dk, 1): Σ φk
            for r in _blocks(t):
                fk = feature_map(k[:, r, i], kind)  # (B, R, dk)
                vi = v[:, r, i]  # (B, R, dv)
                if keep is not None:  # padding keys contribute nothing (zero φk and v: 0·nan stays out)
                    fk, vi = fk.mul_(keep[:, r]), vi * keep[:, r]
                s.baddbmm_(fk.transpose(1, 2), vi)
                z += fk.sum(dim=1).unsqueeze(-1)
            for r in _blocks(t):
                fq = feature_map(q[:, r, i], kind)  # (B, R, dk)
                torch.div(torch.bmm(fq, s), torch.bmm(fq, z).add_(eps), out=out[:, r, i])
            states += [s, z]
        ctx.save_for_backward(q, k, v, keep, *states)
        ctx.kind, ctx.eps = kind, eps
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, keep, *states = ctx.saved_tensors
        kind, eps = ctx.kind, ctx.eps
        t = q.shape[1]
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        for i in range(q.shape[2]):
            s, z = states[2 * i], states[2 * i + 1]  # (B, dk, dv), (B, dk, 1)
            ds, dz = torch.zeros_like(s), torch.zeros_like(z)
            for r in _blocks(t):  # query side: ∂φq, and ∂S, ∂z summed over the queries
                qi = q[:, r, i]  # (B, R, dk)
                fq = feature_map(qi, kind)
                den = torch.bmm(fq, z).add_(eps)  # (B, R, 1)
                a = g[:, r, i] / den  # (B, R, dv)
                c = torch.bmm(fq, s).mul_(a).sum(-1, keepdim=True).div_(den).neg_()  # (B, R, 1)
                ds.baddbmm_(fq.transpose(1, 2), a)
                dz.baddbmm_(fq.transpose(1, 2), c)
                del fq
                dfq = torch.baddbmm(c * z.transpose(1, 2), a, s.transpose(1, 2))  # (B, R, dk)
                del a, c
                dq[:, r, i] = feature_map_backward(qi, dfq, kind)
            for r in _blocks(t):  # key side
                ki, vi = k[:, r, i], v[:, r, i]  # (B, R, dk), (B, R, dv)
                if keep is not None:
                    vi = vi * keep[:, r]
                dfk = torch.baddbmm(dz.transpose(1, 2), vi, ds.transpose(1, 2))  # (B, R, dk): ∂S v_j + ∂z
                fk = feature_map(ki, kind)
                dvi = torch.bmm(fk, ds)  # (B, R, dv)
                del fk
                if keep is not None:
                    dfk, dvi = dfk.mul_(keep[:, r]), dvi.mul_(keep[:, r])
                dv[:, r, i] = dvi
                dk[:, r, i] = feature_map_backward(ki, dfk, kind)
        return dq, dk, dv, None, None, None


def linear_noncausal_fused(q: Tensor, k: Tensor, v: Tensor, keep: Tensor | None, kind: str, eps: float) -> Tensor:
    """Raw (pre-feature-map) q, k (B, T, H, dk), v (B, T, H, dv), `keep` (B, T, 1) float marking real
    keys or None → (B, T, H, dv): V'_i = φq_iᵀ Σ_j φk_j v_jᵀ / (φq_i·Σ_j φk_j + eps)."""
    return _LinearNonCausal.apply(q, k, v, keep, kind, eps)  # type: ignore[no-any-return]


# ---- decoding -----------------------------------------------------------------------------------
def fused_qkv_weights(query: torch.nn.Linear, key: torch.nn.Linear, value: torch.nn.Linear,
                      n_heads: int) -> tuple[Tensor, Tensor]:
    """One (H·(2·dk + dv + 1), D) weight and its bias, head-major: per head its query rows, key rows,
    value rows and a zero row whose bias is 1 (the constant column that carries the normaliser),
    so that every per-head piece of the output is a view, never a copy."""
    d = value.weight.shape[1]
    h = n_heads
    w = torch.cat([query.weight.view(h, -1, d), key.weight.view(h, -1, d), value.weight.view(h, -1, d),
                   value.weight.new_zeros(h, 1, d)], dim=1)  # (H, 2·dk + dv + 1, D)
    b = torch.cat([query.bias.view(h, -1), key.bias.view(h, -1), value.bias.view(h, -1),
                   value.bias.new_ones(h, 1)], dim=1)  # (H, 2·dk + dv + 1)
    return w.view(-1, d).detach(), b.view(-1).detach()


def recurrent_step(x_t: Tensor, weight: Tensor, bias: Tensor, state: Tensor, n_heads: int, key_size: int,
                   kind: str, eps: float) -> tuple[Tensor, Tensor]:
    """x_t (B, 1, D), state S̃ (B, H, dk, dv+1) → (out (B, 1, H·dv) before the output projection, S̃')."""
    b, dk = x_t.shape[0], key_size
    n = b * n_heads
    qkv = torch.addmm(bias, x_t.view(b, -1), weight.t()).view(n, -1)  # (B·H, 2·dk + dv + 1)
    f = feature_map(qkv[:, : 2 * dk].view(n, 2, dk), kind)  # (B·H, 2, dk): φq, φk
    s = torch.baddbmm(state.view(n, dk, -1), f[:, 1].unsqueeze(-1), qkv[:, 2 * dk :].unsqueeze(1))  # S̃ + φk [v, 1]ᵀ
    o = torch.bmm(f[:, :1], s)  # (B·H, 1, dv+1): [φqᵀS, φq·z]
    out = o[..., :-1] / o[..., -1:].add_(eps)  # (B·H, 1, dv)
    return out.view(b, 1, -1), s.view(state.shape)
