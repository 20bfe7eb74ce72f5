"""Synthesizer attention — Tay et al. 2020, "Synthesizer: Rethinking Self-Attention" (§3).

Attention logits are *synthesized* instead of computed from query-key dot products:
- dense:      B_i = W2 relu(W1 x_i + b1) + b2, one row of T logits per token (Eq. 2);
- random:     B = R, a T×T matrix per head, learned or fixed (`trainable: false`), input-independent;
- factorized dense:  two small MLPs give A (a logits) and B (b logits) per token; tiling gives
  C_j = A_{j mod a} · B_{j div a}, a·b >= max_len (Eq. 5);
- factorized random: R = R1 R2ᵀ with rank k (Eq. 6);
- mixtures:   Σ_c α_c B_c with learned α = softmax(w), e.g. random + dot ("R+V" in the paper).
Logits are position-indexed, so the model needs `max_len`; padding keys are still masked.
Output = softmax(B) G(X), G the value projection. The mixture weights are exposed for logging.

Fast paths (`explicit` keeps the written-out form, for attention dropout and the parity tests):
mixtures with dot run as one fused attention whose bias is the synthesized logits (fused.py), and
input-independent logits (random, factorized random) get one softmax for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from attnlab.attention.base import (
    Attention,
    AttentionDims,
    masked_softmax,
    merge_heads,
    scaled_logits,
    split_heads,
)
from attnlab.attention.fused import attend_with_bias, masked
from attnlab.attention.masks import AttentionMask
from attnlab.attention.registry import register


@dataclass(frozen=True)
class SynthesizerOptions:
    dense_hidden: int = 0  # dense MLP hidden size; 0 → d_model
    trainable: bool = True  # random: learn R, or keep the random initialisation fixed
    random_init_std: float = 1.0
    factor_a: int = 8  # factorized dense: a logits × b = ceil(max_len / a) logits
    rank: int = 8  # factorized random: rank k of R1 R2ᵀ

    def __post_init__(self) -> None:
        if self.dense_hidden < 0 or self.factor_a < 1 or self.rank < 1 or self.random_init_std <= 0:
            raise ValueError("dense_hidden >= 0, factor_a >= 1, rank >= 1, random_init_std > 0 required")


class _Dense(nn.Module):
    def __init__(self, d_model: int, hidden: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Synthesizer(Attention):
    """Base of the family; subclasses only choose `components`."""

    Options: ClassVar[type] = SynthesizerOptions
    needs_max_len: ClassVar[bool] = True
    components: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dims: AttentionDims, options: SynthesizerOptions | None = None) -> None:
        super().__init__(dims, options)
        o: SynthesizerOptions = self.options
        h, length, d = dims.n_heads, dims.max_len, dims.d_model
        hidden = o.dense_hidden or d
        if "dense" in self.components:
            self.dense = _Dense(d, hidden, h * length)
        if "random" in self.components:
            r = torch.randn(h, length, length) * o.random_init_std
            if o.trainable:
                self.random = nn.Parameter(r)
            else:
                self.register_buffer("random", r)
            # the initial R, to report how far training moved it (extra_metrics); not saved in checkpoints
            self.register_buffer("random_init", r.clone(), persistent=False)
        self._trained_len_sum, self._trained_batches = 0, 0
        if "factorized_dense" in self.components:
            self.fd_b = -(-length // o.factor_a)
            self.fd_a = _Dense(d, hidden, h * o.factor_a)
            self.fd_bnet = _Dense(d, hidden, h * self.fd_b)
        if "factorized_random" in self.components:
            self.r1 = nn.Parameter(torch.randn(h, length, o.rank) * o.random_init_std / o.rank**0.5)
            self.r2 = nn.Parameter(torch.randn(h, length, o.rank))
        if "dot" in self.components:
            self.query = nn.Linear(d, h * dims.key_size)
            self.key = nn.Linear(d, h * dims.key_size)
        if len(self.components) > 1:
            self.mix = nn.Parameter(torch.zeros(len(self.components)))
        self.value = nn.Linear(d, h * dims.value_size)
        self.output = nn.Linear(h * dims.value_size, d)

    @classmethod
    def flops_per_token(cls, dims: AttentionDims, seq_len: int, options: object = None) -> float:
        """Value/output projections, weights·V (T·dv per head), and per component: the dense MLP (D → hidden →
        H·max_len logits), the two factorized MLPs, or dot's query/key projections and QKᵀ. Random and
        factorized random logits are parameters, computed once per batch: not counted per token."""
        o = options if isinstance(options, SynthesizerOptions) else SynthesizerOptions()
        d, h, length = dims.d_model, dims.n_heads, dims.max_len
        hidden, dk, dv = o.dense_hidden or d, dims.key_size, dims.value_size
        total = 2 * d * h * dv + 2 * h * dv * d + 2 * seq_len * h * dv
        for name in cls.components:
            if name == "dense":
                total += 2 * d * hidden + 2 * hidden * h * length
            elif name == "factorized_dense":
                total += 4 * d * hidden + 2 * hidden * h * (o.factor_a + -(-length // o.factor_a))
            elif name == "dot":
                total += 4 * d * h * dk + 2 * seq_len * h * dk
        return float(total)

    def _logits(self, name: str, x: Tensor) -> Tensor:
        """One component's logits, (B or 1, H, T, T)."""
        b, t, _ = x.shape
        h = self.n_heads
        if name == "dense":
            return self.dense(x).view(b, t, h, -1).transpose(1, 2)[..., :t]  # (B, H, T, T)
        if name == "random":
            return self.random[None, :, :t, :t]  # (1, H, T, T)
        if name == "factorized_dense":
            a = self.fd_a(x).view(b, t, h, -1).transpose(1, 2)  # (B, H, T, a)
            bb = self.fd_bnet(x).view(b, t, h, -1).transpose(1, 2)  # (B, H, T, b)
            tiled = a.repeat(1, 1, 1, self.fd_b) * bb.repeat_interleave(a.shape[-1], dim=-1)  # (B, H, T, a·b)
            return tiled[..., :t]
        if name == "factorized_random":
            return (self.r1[:, :t] @ self.r2[:, :t].transpose(-2, -1))[None]  # (1, H, T, T)
        q = split_heads(self.query(x), h)  # (B, H, T, dk)
        k = split_heads(self.key(x), h)  # (B, H, T, dk)
        return scaled_logits(q, k)

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        t = x.shape[1]
        if self.training:  # the lengths training used: R[:, :T, :T] beyond them never gets a gradient
            self._trained_len_sum += t
            self._trained_batches += 1
        if t > self.dims.max_len:
            raise ValueError(f"{self.name}: sequence length {t} exceeds model.max_len={self.dims.max_len}")
        if self.training and self.dims.dropout > 0:
            return self.explicit(x, mask)  # dropout acts on the T×T weights: only the explicit form has them
        allowed = mask.dense(t, x.device)  # (B or 1, 1, T, T) or None
        v = split_heads(self.value(x), self.n_heads)  # (B, H, T, dv)
        if "dot" in self.components:
            return self.output(merge_heads(self._fused(x, v, allowed)))
        logits = self._mixed_logits(x, skip=None)
        assert logits is not None
        if logits.shape[0] == 1 and (allowed is None or allowed.shape[0] == 1):
            # Input-independent logits (random, factorized random) under a mask shared by the batch:
            # the softmax is computed once for the whole batch, and the batch rides in the matmul's
            # columns — (H, T, T) @ (H, T, B·dv) — so its backward never expands P to (B, H, T, T).
            probs = masked_softmax(logits[0], None if allowed is None else allowed[0])  # (H, T, T)
            b, h, _, dv = v.shape
            vb = v.permute(1, 2, 0, 3).reshape(h, t, b * dv)  # (H, T, B·dv)
            out = (probs @ vb).view(h, t, b, dv).permute(2, 1, 0, 3)  # (B, T, H, dv)
            return self.output(out.reshape(b, t, h * dv))  # (B, T, D)
        return self.output(merge_heads(masked_softmax(logits, allowed) @ v))  # (B, T, D)

    def _mixed_logits(self, x: Tensor, skip: str | None) -> Tensor | None:
        """Σ_c α_c B_c over the components other than `skip` ((B or 1, H, T, T)), or None if none."""
        names = [c for c in self.components if c != skip]
        if not names:
            return None
        if len(self.components) == 1:
            return self._logits(names[0], x)
        alpha = torch.softmax(self.mix, dim=0)
        terms = [alpha[self.components.index(c)] * self._logits(c, x) for c in names]
        total = terms[0]
        for term in terms[1:]:  # not sum(): its start value 0 would cost one more T×T pass
            total = total + term
        return total

    def _fused(self, x: Tensor, v: Tensor, allowed: Tensor | None) -> Tensor:
        """Mixtures with `dot`: the synthesized logits are an additive bias of one fused attention
        call, softmax(α_dot·QKᵀ/√dk + Σ_c α_c B_c) V (fused.py); α_dot scales the queries, and a single
        synthesized component enters unscaled with its α passed alongside (no T×T pass for α·B)."""
        h = self.n_heads
        q = split_heads(self.query(x), h)  # (B, H, T, dk)
        k = split_heads(self.key(x), h)  # (B, H, T, dk)
        others = [c for c in self.components if c != "dot"]
        alpha = torch.softmax(self.mix, dim=0)
        q = q * alpha[self.components.index("dot")]
        bias: Tensor | None = self._logits(others[0], x) if len(others) == 1 else self._mixed_logits(x, skip="dot")
        weight = alpha[self.components.index(others[0])] if len(others) == 1 else None
        assert bias is not None
        return attend_with_bias(q, k, v, masked(bias, allowed), self.key_size ** -0.5, weight)  # (B, H, T, dv)

    def explicit(self, x: Tensor, mask: AttentionMask) -> Tensor:
        """The reference form: the (B, H, T, T) weights written out (parity tests; attention dropout)."""
        t = x.shape[1]
        if len(self.components) == 1:
            logits = self._logits(self.components[0], x)
        else:
            alpha = torch.softmax(self.mix, dim=0)
            logits = sum(alpha[i] * self._logits(c, x) for i, c in enumerate(self.components))  # type: ignore[assignment]
        probs = self.dropout(masked_softmax(logits, mask.dense(t, x.device)))  # (B, H, T, T)
        v = split_heads(self.value(x), self.n_heads)  # (B, H, T, dv)
        return self.output(merge_heads(probs @ v))  # (B, T, D)

    def mixture_weights(self) -> dict[str, float]:
        if len(self.components) == 1:
            return {}
        alpha = torch.softmax(self.mix.detach(), dim=0).tolist()
        return {f"mix/{c}": float(a) for c, a in zip(self.components, alpha)}

    def random_movement(self) -> dict[str, float]:
        """`random/rel_change` = ‖R − R₀‖ / ‖R₀‖ (Frobenius) over the block R[:, :L, :L], L the mean sequence length
        of the training batches this module has seen (the whole R before any): how far training moved the random
        logits where it used them. Entries beyond the lengths the data reaches never get a gradient, so the whole
        matrix would understate it. Near 0 means a learned R behaves like a fixed one."""
        if "random" not in self.components:
            return {}
        r0 = self.random_init
        assert isinstance(r0, Tensor)
        size = r0.shape[-1]
        if self._trained_batches:
            size = max(1, min(size, round(self._trained_len_sum / self._trained_batches)))
        r, r0 = self.random.detach()[:, :size, :size], r0[:, :size, :size]
        return {"random/rel_change": float((r - r0).norm() / r0.norm().clamp_min(1e-12)),
                "random/trained_len": float(size)}

    def extra_metrics(self) -> dict[str, float]:
        return {**self.mixture_weights(), **self.random_movement()}


@register
class DenseSynthesizer(Synthesizer):
    name: ClassVar[str] = "synthesizer_dense"
    components: ClassVar[tuple[str, ...]] = ("dense",)


@register
class RandomSynthesizer(Synthesizer):
    name: ClassVar[str] = "synthesizer_random"
    components: ClassVar[tuple[str, ...]] = ("random",)


@register
class FactorizedDenseSynthesizer(Synthesizer):
    name: ClassVar[str] = "synthesizer_factorized_dense"
    components: ClassVar[tuple[str, ...]] = ("factorized_dense",)


@register
class FactorizedRandomSynthesizer(Synthesizer):
    name: ClassVar[str] = "synthesizer_factorized_random"
    components: ClassVar[tuple[str, ...]] = ("factorized_random",)


@register
class RandomDotSynthesizer(Synthesizer):
    name: ClassVar[str] = "synthesizer_random_dot"
    components: ClassVar[tuple[str, ...]] = ("random", "dot")


@register
class DenseDotSynthesizer(Synthesizer):
    name: ClassVar[str] = "synthesizer_dense_dot"
    components: ClassVar[tuple[str, ...]] = ("dense", "dot")
