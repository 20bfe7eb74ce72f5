"""Transformer sub-layers: (Conditional) LayerNorm, feed-forward, and the residual wrappers.

Conditional LayerNorm (as in bert4keras' CLN, after de Vries et al. 2017's conditional batch norm):
    y = (γ + W_γ c) ⊙ (x − μ)/σ + (β + W_β c)
with W_γ, W_β zero-initialised, so at init CLN equals the LayerNorm it replaces. An optional
hidden layer (c → h → γ/β) keeps the extra parameters low-rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.attention.base import Attention
from attnlab.attention.masks import AttentionMask

ZERO_INIT = "_attnlab_zero_init"  # modules flagged with this attribute are zero-initialised


def activation_fn(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    return nn.GELU(approximate="tanh" if name == "gelu_new" else "none")


class ConditionalLayerNorm(nn.Module):
    def __init__(self, d_model: int, condition_size: int, hidden: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        self.hidden = nn.Linear(condition_size, hidden, bias=False) if hidden else None
        width = hidden or condition_size
        self.to_gamma = nn.Linear(width, d_model, bias=False)
        self.to_beta = nn.Linear(width, d_model, bias=False)
        for proj in (self.to_gamma, self.to_beta):
            setattr(proj, ZERO_INIT, True)
            nn.init.zeros_(proj.weight)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        y = F.layer_norm(x, x.shape[-1:], None, None, self.eps)
        if condition is None:
            raise ValueError("this model uses Conditional LayerNorm (model.condition_size > 0): pass `condition`")
        c = self.hidden(condition) if self.hidden is not None else condition  # (B, C)
        gamma = self.weight + self.to_gamma(c).unsqueeze(1)  # (B, 1, D)
        beta = self.bias + self.to_beta(c).unsqueeze(1)  # (B, 1, D)
        return y * gamma + beta


class Norm(nn.Module):
    """LayerNorm, or ConditionalLayerNorm when a condition size is given; one call signature."""

    def __init__(self, d_model: int, eps: float, condition_size: int = 0, condition_hidden: int = 0) -> None:
        super().__init__()
        self.norm: nn.Module
        if condition_size:
            self.norm = ConditionalLayerNorm(d_model, condition_size, condition_hidden, eps)
        else:
            self.norm = nn.LayerNorm(d_model, eps=eps)
        self.conditional = bool(condition_size)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.norm(x, condition) if self.conditional else self.norm(x)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_model, d_ff)
        self.act = activation_fn(activation)
        self.fc_out = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_out(self.dropout(self.act(self.fc_in(x))))


class Residual(nn.Module):
    """x ↦ norm(x + f(x)) (post-norm, BERT) or x + f(norm(x)) (pre-norm, GPT-2)."""

    def __init__(self, fn: nn.Module, norm: Norm, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.fn = fn
        self.norm = norm
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def _call(self, x: Tensor, mask: AttentionMask | None) -> Tensor:
        return self.fn(x, mask) if isinstance(self.fn, Attention) else self.fn(x)

    def forward(self, x: Tensor, mask: AttentionMask | None = None, condition: Tensor | None = None) -> Tensor:
        return self.wrap(x, lambda h: self._call(h, mask), condition)

    def wrap(self, x: Tensor, fn: Callable[[Tensor], Tensor], condition: Tensor | None) -> Tensor:
        """The residual + norm arrangement around any function of the (normed) input."""
        if self.pre_norm:
            return x + self.dropout(fn(self.norm(x, condition)))
        return self.norm(x + self.dropout(fn(x)), condition)

    def decode(self, x: Tensor, condition: Tensor | None,
               run: Callable[[Tensor], tuple[Tensor, Any]]) -> tuple[Tensor, Any]:
        """Like forward, for attention calls that also return a decoding state (prefill/step)."""
        box: list[Any] = []

        def fn(h: Tensor) -> Tensor:
            out, state = run(h)
            box.append(state)
            return out

        return self.wrap(x, fn, condition), box[0]


def init_weights(module: nn.Module, std: float) -> None:
    """BERT-style init: N(0, std) for Linear/Embedding weights, zero biases; zero-init flagged
    projections (CLN) and leave parameters that variants initialise themselves alone."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            if getattr(m, ZERO_INIT, False):
                nn.init.zeros_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)

