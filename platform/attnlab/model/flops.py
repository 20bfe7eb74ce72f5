"""Analytic forward FLOPs per token of the Transformer body, from its `ModelConfig` alone.

Architecture-determined and noise-free (the same on every machine, unlike tokens/s), so a report can
show it beside measured throughput. Counted: 2 FLOPs per multiply-add of every matmul of one forward
pass, per token, at sequence length `seq_len` — the ALBERT embedding projection (E → D, when E ≠ D),
and per layer the attention variant's own count (`Attention.flops_per_token`, declared on each class)
plus the feed-forward block (D → d_ff → D). Not counted: embedding lookups, LayerNorm, activations,
softmax and other elementwise work; Conditional LayerNorm's projections (once per sequence, not per
token); the task heads (the same for every attention variant). Shared layers (ALBERT) still run
`n_layers` times, so they cost `n_layers` layers. A backward pass costs about twice the forward.
"""

from __future__ import annotations

from attnlab.attention.base import options_from_dict
from attnlab.attention.registry import get_attention_class
from attnlab.model.config import ModelConfig
from attnlab.model.transformer import attention_dims


def attention_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """One attention layer's forward FLOPs per token (the variant's `flops_per_token`)."""
    cls = get_attention_class(cfg.attention.kind)
    return cls.flops_per_token(attention_dims(cfg), seq_len, options_from_dict(cls, dict(cfg.attention.options)))


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs per token of the Transformer body (no task head) at sequence length `seq_len`."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    embed = 2 * cfg.emb_size * cfg.d_model if cfg.emb_size != cfg.d_model else 0
    ffn = 4 * cfg.d_model * cfg.d_ff
    return float(embed + cfg.n_layers * (attention_flops_per_token(cfg, seq_len) + ffn))
