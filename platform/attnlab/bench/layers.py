"""Build any benchmarked attention layer by name (a registry variant or a reference) and the
forward+backward call that is timed and memory-profiled."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from attnlab.attention import ATTENTION, AttentionDims, build_attention
from attnlab.attention.masks import AttentionMask
from attnlab.bench.config import LayerShape
from attnlab.bench.references import LINEAR_MEMORY, REFERENCES, build_reference

# Needed by a target at every length, so never skipped for time (only when their T×T tensors
# cannot fit). Registered variants are measured up to the targets' longest length too (see
# attention._skip_reason): time-based skips apply only beyond it (`--long`).
CORE = frozenset({"dot", "linear", "sdpa", "explicit_softmax", "hf_bert", "explicit_linear"})
QUADRATIC_COPIES = 4  # T×T fp32 tensors alive at the backward peak: logits, probs, and their grads


def layer_names(variants: tuple[str, ...] = ()) -> list[str]:
    """Registered variants (all, or the chosen ones, dot and linear always first) + references."""
    chosen = list(variants) or sorted(ATTENTION)
    unknown = [v for v in chosen if v not in ATTENTION]
    if unknown:
        raise ValueError(f"unknown attention variant(s) {unknown}; valid: {', '.join(sorted(ATTENTION))}")
    ordered = [v for v in ("dot", "linear") if v in ATTENTION] + [v for v in chosen if v not in ("dot", "linear")]
    return ordered + list(REFERENCES)


def is_reference(name: str) -> bool:
    return name in REFERENCES


def quadratic_bytes(name: str, shape: LayerShape, seq_len: int) -> int:
    """Rough bytes of T×T tensors one forward+backward keeps alive (0 for O(T)-memory layers)."""
    if name in LINEAR_MEMORY or getattr(ATTENTION.get(name), "linear_memory", False):  # the class declares it
        return 0
    return QUADRATIC_COPIES * shape.batch * shape.n_heads * seq_len**2 * 4


def build_layer(name: str, shape: LayerShape, seq_len: int, device: torch.device) -> nn.Module:
    if is_reference(name):
        layer = build_reference(name, shape.d_model, shape.n_heads)
    else:
        # Synthesizers index logits by position: max_len = T. Dropout 0 everywhere.
        dims = AttentionDims(shape.d_model, shape.n_heads, shape.head_size, shape.head_size, seq_len, 0.0)
        layer = build_attention(name, dims)
    return layer.to(device).train()


def make_step(layer: nn.Module, shape: LayerShape, seq_len: int, device: torch.device,
              mask: AttentionMask | None = None) -> Callable[[], None]:
    """One forward+backward of `layer` on a fixed random (B, T, D) input, grads freed first
    (as `zero_grad(set_to_none=True)` would), so every call allocates what a training step does."""
    x = torch.randn(shape.batch, seq_len, shape.d_model, device=device, requires_grad=True)  # (B, T, D)
    grad_out = torch.randn(shape.batch, seq_len, shape.d_model, device=device)  # (B, T, D)
    mask = mask or AttentionMask("bidirectional")
    params = list(layer.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        out: Tensor = layer(x, mask)  # (B, T, D)
        out.backward(grad_out)

    return step
