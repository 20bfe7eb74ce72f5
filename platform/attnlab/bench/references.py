"""Reference attention layers the registry's variants are timed against, all with the same
q/k/v/output Linear projections as the variants, so a ratio isolates what differs:

- `sdpa`: raw `F.scaled_dot_product_attention` on the projected q/k/v — dot/sdpa is the cost of
  attnlab's wrapper (mask object, head split/merge);
- `explicit_softmax`: softmax(QKᵀ/√dk)V with the T×T matrix materialised (Vaswani et al. 2017, Eq. 1);
- `hf_bert`: `transformers`' BertSelfAttention (its default attention implementation, SDPA)
  followed by BertSelfOutput's dense projection. BertSelfOutput's residual + LayerNorm is left
  out: attnlab's attention layer does not include them either, so both do the same work;
- `explicit_linear`: the O(T²) normalised-kernel form of linear attention (Katharopoulos et al.
  2020, Eq. 4 with φ = elu + 1): A = φ(Q)φ(K)ᵀ, out = (A V) / (A·1).

All take `(x (B, T, D), mask)` like `attnlab.attention.Attention` and support only the
unmasked bidirectional case the benchmark uses.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.attention.base import QKVProjections, merge_heads
from attnlab.attention.masks import AttentionMask

# Which reference each registered variant is compared with in the report.
REFERENCES = ("sdpa", "explicit_softmax", "hf_bert", "explicit_linear")
# References whose peak memory is O(T) (fused SDPA kernels); variants declare it on their class (`linear_memory`).
LINEAR_MEMORY = frozenset({"sdpa", "hf_bert"})


class _Reference(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.proj = QKVProjections(d_model, n_heads, d_model // n_heads, n_heads, d_model // n_heads)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, mask: AttentionMask | None = None) -> Tensor:
        if mask is not None and (mask.kind != "bidirectional" or mask.key_padding is not None):
            raise ValueError("reference layers implement only the unmasked bidirectional case")
        b, t, _ = x.shape
        q = self.proj.query(x).view(b, t, self.n_heads, -1).transpose(1, 2)  # (B, H, T, dk)
        k = self.proj.key(x).view(b, t, self.n_heads, -1).transpose(1, 2)  # (B, H, T, dk)
        v = self.proj.value(x).view(b, t, self.n_heads, -1).transpose(1, 2)  # (B, H, T, dv)
        return self.proj.output(merge_heads(self.attend(q, k, v)))  # (B, T, D)


class SDPAReference(_Reference):
    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v)  # (B, H, T, dv)


class ExplicitSoftmaxReference(_Reference):
    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)  # (B, H, T, T)
        return probs @ v  # (B, H, T, dv)


class ExplicitLinearReference(_Reference):
    def __init__(self, d_model: int, n_heads: int, eps: float = 1e-6) -> None:
        super().__init__(d_model, n_heads)
        self.eps = eps

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        a = (F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-2, -1)  # (B, H, T, T)
        # Normalising the (T, dv) product instead of the (T, T) matrix: same maths, one fewer T×T pass.
        return (a @ v) / (a.sum(-1, keepdim=True) + self.eps)  # (B, H, T, dv)


class HFBertReference(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertSelfAttention, BertSelfOutput

        # The implementation BertModel picks by default; a bare module would otherwise get eager.
        options: dict[str, Any] = {"attn_implementation": "sdpa"}
        config = BertConfig(hidden_size=d_model, num_attention_heads=n_heads, intermediate_size=4 * d_model,
                            attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0, **options)
        self.attn_implementation = config._attn_implementation
        self.attention = BertSelfAttention(config)
        self.output = BertSelfOutput(config).dense  # the projection only; see the module docstring

    def forward(self, x: Tensor, mask: AttentionMask | None = None) -> Tensor:
        context = self.attention(x)[0]  # (B, T, D)
        return self.output(context)  # type: ignore[no-any-return]


def build_reference(name: str, d_model: int, n_heads: int) -> nn.Module:
    builders: dict[str, Any] = {"sdpa": SDPAReference, "explicit_softmax": ExplicitSoftmaxReference,
                                "hf_bert": HFBertReference, "explicit_linear": ExplicitLinearReference}
    if name not in builders:
        raise ValueError(f"unknown reference {name!r}; valid: {', '.join(REFERENCES)}")
    return builders[name](d_model, n_heads)  # type: ignore[no-any-return]
