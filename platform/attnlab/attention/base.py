"""What every attention variant shares: its dimensions, projections, head split/merge, and the
class-level declarations (name, options, capabilities) that the registry, the config validator,
the checkpoint loader, decoding and the registry-wide tests read — no other module keeps its own
list of which variant can do what.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from attnlab.attention.masks import AttentionMask


@dataclass(frozen=True)
class AttentionDims:
    """Model dimensions an attention layer needs. ``key_size``/``value_size`` are per head and
    decoupled from ``d_model // n_heads`` (Bhojanapalli et al. 2020), so they cross with any variant."""

    d_model: int
    n_heads: int
    key_size: int
    value_size: int
    max_len: int
    dropout: float = 0.0


@dataclass(frozen=True)
class NoOptions:
    """Variants without knobs of their own."""


HF_FAMILIES = frozenset({"bert", "roberta", "albert", "gpt2"})  # pretrained families with dot attention
DECODING_KINDS = ("kv_cache", "recurrent", "history")


class Attention(nn.Module):
    """Base class: ``forward(x (B, T, D), mask) -> (B, T, D)``.

    Subclasses set the class attributes and build only the projections they use (a parameter
    that gets no gradient is a bug the registry-wide tests catch). Capabilities, each checked by
    the registry-wide tests:
    - `supported_masks`: which of padding / causal / prefix it honours;
    - `permutation_equivariant`: permuting the tokens permutes the outputs;
    - `linear_memory`: no T×T tensor in forward or backward (causal or unmasked, dk == dv);
    - `exact_weights`: checkpoint families whose attention weights it reproduces exactly — HF
      model types (`HF_FAMILIES`), or attnlab attention kinds for attnlab checkpoints; the
      checkpoint loader refuses any other family;
    - `decoding`: how `step` decodes — `kv_cache` (keys/values of every earlier token),
      `recurrent` (a state of constant size) or `history` (the layer's inputs, recomputed).
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    supported_masks: ClassVar[frozenset[str]] = frozenset({"padding", "causal", "prefix"})
    permutation_equivariant: ClassVar[bool] = False
    needs_max_len: ClassVar[bool] = False
    linear_memory: ClassVar[bool] = False
    exact_weights: ClassVar[frozenset[str]] = frozenset()
    decoding: ClassVar[str] = "history"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.decoding not in DECODING_KINDS:
            raise TypeError(f"{cls.__name__}.decoding={cls.decoding!r}; valid: {', '.join(DECODING_KINDS)}")
        own_step = cls.step is not Attention.step
        if own_step != (cls.decoding != "history"):
            raise TypeError(f"{cls.__name__}: decoding={cls.decoding!r} but it "
                            f"{'overrides' if own_step else 'inherits'} step(); 'history' is the inherited one")

    def __init__(self, dims: AttentionDims, options: Any = None) -> None:
        super().__init__()
        self.dims = dims
        self.options = options if options is not None else self.Options()
        self.n_heads = dims.n_heads
        self.key_size = dims.key_size
        self.value_size = dims.value_size
        self.dropout = nn.Dropout(dims.dropout)

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_metrics(self) -> dict[str, float]:
        """Scalars worth logging (e.g. Synthesizer mixture weights); empty by default."""
        return {}

    # ---- incremental decoding ------------------------------------------------------------
    # Default: keep the layer's input history and recompute the last row — O(T²) per token but
    # correct for every variant (and for prefix masks). Dot (KV cache) and linear (RNN state) override.
    def prefill(self, x: Tensor, mask: AttentionMask) -> tuple[Tensor, Any]:
        """Run on a prompt (B, T, D) and return (output, decoding state)."""
        return self(x, mask), {"x": x, "seg": mask.segment_ids}

    def step(self, x_t: Tensor, state: Any, mask_kind: str) -> tuple[Tensor, Any]:
        """One new token (B, 1, D) attending to everything before it → ((B, 1, D), new state)."""
        if state is None:
            state = {"x": x_t[:, :0], "seg": None}
        x = torch.cat([state["x"], x_t], dim=1)  # (B, T+1, D)
        seg = state["seg"]
        if mask_kind == "prefix":
            one = torch.ones(x_t.shape[0], 1, dtype=torch.long, device=x_t.device)
            seg = one if seg is None else torch.cat([seg.long(), one], dim=1)
            mask = AttentionMask("prefix", None, seg)
        else:
            mask = AttentionMask("causal")
        return self(x, mask)[:, -1:], {"x": x, "seg": seg}

    @classmethod
    def flops_per_token(cls, dims: AttentionDims, seq_len: int, options: Any = None) -> float:
        """Forward FLOPs per token of this layer at sequence length `seq_len`: 2 per multiply-add of the
        layer's defining matmuls (projections and token mixing, the paper's form), every query reading all
        `seq_len` keys (masks are not discounted: the kernels compute masked entries too). Softmax, feature
        maps, biases and other elementwise work are not counted, nor input-independent terms (a random
        Synthesizer's logits). Architecture-determined: the same number on every machine."""
        raise NotImplementedError(f"attention {cls.name!r} does not declare flops_per_token")

    @classmethod
    def check_config(cls, dims: AttentionDims, mask_kind: str) -> None:
        """Reject impossible combinations at config-validation time (raise ValueError with the reason)."""
        needed = {"causal": "causal", "prefix": "prefix"}.get(mask_kind)
        if needed is not None and needed not in cls.supported_masks:
            raise ValueError(
                f"attention {cls.name!r} does not support the {mask_kind!r} mask "
                f"(supports: {', '.join(sorted(cls.supported_masks))})"
            )
        if cls.needs_max_len and dims.max_len <= 0:
            raise ValueError(f"attention {cls.name!r} needs model.max_len > 0 (its logits are position-indexed)")


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, H*d) → (B, H, T, d)."""
    b, t, _ = x.shape
    return x.view(b, t, n_heads, -1).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, d) → (B, T, H*d)."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class QKVProjections(nn.Module):
    """Query/key/value/output projections with per-head sizes decoupled from d_model."""

    def __init__(self, d_model: int, q_heads: int, key_size: int, v_heads: int, value_size: int) -> None:
        super().__init__()
        self.q_heads, self.v_heads = q_heads, v_heads
        self.query = nn.Linear(d_model, q_heads * key_size)
        self.key = nn.Linear(d_model, q_heads * key_size)
        self.value = nn.Linear(d_model, v_heads * value_size)
        self.output = nn.Linear(v_heads * value_size, d_model)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q = split_heads(self.query(x), self.q_heads)  # (B, H, T, dk)
        k = split_heads(self.key(x), self.q_heads)  # (B, H, T, dk)
        v = split_heads(self.value(x), self.v_heads)  # (B, H, T, dv)
        return q, k, v


def projection_flops(d_model: int, q_heads: int, key_size: int, v_heads: int, value_size: int) -> int:
    """Per-token forward FLOPs of `QKVProjections`: query, key, value (D → heads·size) and output (→ D)."""
    return 2 * d_model * (2 * q_heads * key_size + v_heads * value_size) + 2 * v_heads * value_size * d_model


class ValueProjections(nn.Module):
    """Value/output projections only, for variants without queries and keys (pure Synthesizers)."""

    def __init__(self, d_model: int, n_heads: int, value_size: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.value = nn.Linear(d_model, n_heads * value_size)
        self.output = nn.Linear(n_heads * value_size, d_model)


def masked_softmax(logits: Tensor, allowed: Tensor | None) -> Tensor:
    """Softmax over the last axis with disallowed positions at -inf (rows are never all masked:
    `AttentionMask.dense` guarantees at least one allowed key)."""
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return torch.softmax(logits, dim=-1)


def scaled_logits(q: Tensor, k: Tensor) -> Tensor:
    """QKᵀ/√dk: (B, H, T, dk) × (B, H, T, dk) → (B, H, T, T)."""
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def resolve_option_aliases(cls: type[Attention], values: dict[str, Any]) -> dict[str, Any]:
    """Old option spellings → current names, from the Options class's `aliases` (old → new)."""
    aliases: dict[str, str] = getattr(cls.Options, "aliases", {})
    out = dict(values)
    for old, new in aliases.items():
        if old in out:
            if new in out:
                raise ValueError(f"option {old!r} is the old name of {new!r}; give only {new!r}")
            out[new] = out.pop(old)
    return out


def options_from_dict(cls: type[Attention], values: dict[str, Any]) -> Any:
    """Build a variant's Options from a plain dict (already validated by the config loader)."""
    values = resolve_option_aliases(cls, values)
    names = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for attention {cls.name!r}; valid: {sorted(names)}")
    return cls.Options(**values)
