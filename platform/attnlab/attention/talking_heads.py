"""Talking-heads attention — Shazeer et al. 2020 (arXiv 2003.02436, Alg. "TalkingHeadsAttention").

Learned head-mixing matrices around the softmax, in the paper's three head counts — h_k heads
for queries and keys, h heads for the logits and weights (the model's `n_heads`), h_v heads for
values (options `h_k`, `h_v`; 0 → n_heads):
    J = QKᵀ/√dk over h_k query/key heads (B, h_k, T, T)
    L = P_l · J   mixes them into h logit heads        (P_l: h_k × h)
    W = softmax(L) over keys                            (B, h, T, T)
    U = P_w · W   mixes the h weight heads into h_v     (P_w: h × h_v)
    O = U V over h_v value heads
Both mixers start as the identity (rectangular `eye` when sizes differ), so at init with
h_k = h = h_v the layer equals `dot` exactly — a free parity test.

No T×T matrix is needed: both mixings fold into one fused SDPA call with h heads.
- Before the softmax, L_j = Σ_i P_l[i, j] q_i k_iᵀ/√dk = [P_l[1, j] q_1, …, P_l[h_k, j] q_hk]·[k_1, …, k_hk]ᵀ/√dk:
  head j's query is the mixed concatenation of all query heads, and every head shares one key,
  the concatenation of all key heads (width h_k·dk).
- After it, O_l = Σ_j P_w[j, l] softmax(L_j) V_l: each head j attends over one value shared by all
  heads, the concatenation [V_1, …, V_hv] (width h_v·dv), giving a_j = softmax(L_j)[V_1, …, V_hv];
  then O_l = Σ_j P_w[j, l] a_j[l] mixes the (B, h, T, h_v·dv) outputs — O(T) memory.
The kernel does ~h× dot's attention FLOPs (widths h_k·dk and h_v·dv instead of dk and dv). The
explicit form (`explicit`) is kept for attention dropout, which acts on the mixed weights U and so
cannot be applied inside the kernel (dropping softmax(L_j) before mixing is a different model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.attention.base import (
    HF_FAMILIES,
    Attention,
    AttentionDims,
    QKVProjections,
    masked_softmax,
    merge_heads,
    projection_flops,
    scaled_logits,
)
from attnlab.attention.masks import AttentionMask
from attnlab.attention.registry import register


@dataclass(frozen=True)
class TalkingHeadsOptions:
    h_k: int = 0  # query/key heads (the paper's h_k); 0 → n_heads
    h_v: int = 0  # value heads (the paper's h_v); 0 → n_heads. The paper's h is model.n_heads
    aliases: ClassVar[dict[str, str]] = {"logit_heads": "h_k", "weight_heads": "h_v"}  # earlier names

    def __post_init__(self) -> None:
        if self.h_k < 0 or self.h_v < 0:
            raise ValueError("h_k and h_v must be >= 0 (0 = n_heads)")


@register
class TalkingHeadsAttention(Attention):
    name: ClassVar[str] = "talking_heads"
    Options: ClassVar[type] = TalkingHeadsOptions
    permutation_equivariant: ClassVar[bool] = True
    exact_weights: ClassVar[frozenset[str]] = HF_FAMILIES | {"dot"}  # identity mixers when h_k = h = h_v
    linear_memory: ClassVar[bool] = True  # both mixings fold into one fused SDPA call (see the docstring)

    def __init__(self, dims: AttentionDims, options: TalkingHeadsOptions | None = None) -> None:
        super().__init__(dims, options)
        o: TalkingHeadsOptions = self.options
        h = dims.n_heads
        self.h_k, self.h_v = o.h_k or h, o.h_v or h
        self.proj = QKVProjections(dims.d_model, self.h_k, dims.key_size, self.h_v, dims.value_size)
        self.pre_mix = nn.Parameter(torch.empty(self.h_k, h))  # P_l
        self.post_mix = nn.Parameter(torch.empty(h, self.h_v))  # P_w
        nn.init.eye_(self.pre_mix)
        nn.init.eye_(self.post_mix)

    def extra_metrics(self) -> dict[str, float]:
        """`mix_change/pre`, `mix_change/post`: ‖P − I‖ / ‖I‖ (Frobenius, I the identity-like init) — how far the
        head mixings moved from plain multi-head attention. Near 0: the model is still dot-product attention."""
        out = {}
        for name, p in (("pre", self.pre_mix), ("post", self.post_mix)):
            eye = torch.eye(*p.shape, device=p.device, dtype=p.dtype)
            out[f"mix_change/{name}"] = float((p.detach() - eye).norm() / eye.norm())
        return out

    @classmethod
    def flops_per_token(cls, dims: AttentionDims, seq_len: int, options: object = None) -> float:
        """The paper's form: projections (h_k query/key heads, h_v value heads), QKᵀ over h_k heads, the two
        head mixings (h_k → h logits, h → h_v weights) and weights·V. The fused kernel spends more (see the
        module docstring); this is the architecture's count."""
        o = options if isinstance(options, TalkingHeadsOptions) else TalkingHeadsOptions()
        h, dk, dv = dims.n_heads, dims.key_size, dims.value_size
        hk, hv = o.h_k or h, o.h_v or h
        mixing = seq_len * (hk * dk + hk * h + h * hv + hv * dv)
        return float(projection_flops(dims.d_model, hk, dk, hv, dv) + 2 * mixing)

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        if self.training and self.dims.dropout > 0:
            return self.explicit(x, mask)  # dropout acts on the mixed weights U: only the explicit form has them
        b, t, _ = x.shape
        h, hk, hv, dk, dv = self.n_heads, self.h_k, self.h_v, self.key_size, self.value_size
        q = self.proj.query(x).view(b, 1, t, hk, dk)  # (B, 1, T, h_k, dk)
        q = (q * self.pre_mix.t().reshape(1, h, 1, hk, 1)).reshape(b, h, t, hk * dk)  # (B, h, T, h_k·dk): [P_1j q_1, …]
        k = self.proj.key(x).view(b, 1, t, hk * dk)  # (B, 1, T, h_k·dk): [k_1, …, k_hk], shared by all h heads
        v = self.proj.value(x).view(b, 1, t, hv * dv)  # (B, 1, T, h_v·dv): [V_1, …, V_hv], shared too
        width = max(hk * dk, hv * dv)  # fused CPU kernels need one head size: zero columns change nothing
        q, k, v = (F.pad(a, (0, width - a.shape[-1])) if a.shape[-1] < width else a for a in (q, k, v))
        if mask.kind == "bidirectional":
            # Every head has the same key and value, so the h heads can stand one after another as one
            # head of h·T queries: the kernel then reads K and V once, with no per-head copies.
            allowed = mask.dense(t, x.device)  # None, or key padding (B, 1, T, T)
            if allowed is not None:
                allowed = allowed.expand(b, h, t, t).reshape(b, 1, h * t, t)  # (B, 1, h·T, T)
            a = F.scaled_dot_product_attention(q.reshape(b, 1, h * t, -1), k, v, attn_mask=allowed, scale=dk**-0.5)
        elif mask.is_causal and mask.key_padding is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=dk**-0.5, enable_gqa=True)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.dense(t, x.device), scale=dk**-0.5,
                                               enable_gqa=True)
        a = a[..., : hv * dv].reshape(b, h, t, hv, dv)  # (B, h, T, h_v, dv): a[j, l] = softmax(L_j) V_l
        out = (a * self.post_mix.view(1, h, 1, hv, 1)).sum(dim=1)  # (B, T, h_v, dv): Σ_j P_w[j, l] a[j, l]
        return self.proj.output(out.reshape(b, t, hv * dv))  # (B, T, D)

    def explicit(self, x: Tensor, mask: AttentionMask) -> Tensor:
        """The paper's form with the (B, h, T, T) weights written out (parity tests; attention dropout)."""
        q, k, v = self.proj.qkv(x)  # (B, h_k, T, dk), (B, h_k, T, dk), (B, h_v, T, dv)
        logits = scaled_logits(q, k)  # (B, h_k, T, T)
        logits = torch.einsum("bkij,kh->bhij", logits, self.pre_mix)  # (B, h, T, T)
        probs = masked_softmax(logits, mask.dense(x.shape[1], x.device))
        probs = torch.einsum("bhij,hv->bvij", probs, self.post_mix)  # (B, h_v, T, T)
        out = self.dropout(probs) @ v  # (B, h_v, T, dv)
        return self.proj.output(merge_heads(out))  # (B, T, D)
