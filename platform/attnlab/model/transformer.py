"""The shared Transformer: embeddings → blocks → (heads in `heads.py`).

One module serves as encoder (BERT/ALBERT), left-to-right LM (GPT-2) or UniLM seq2seq model:
the mask kind, the attention variant, cross-layer sharing, key/value sizes and Conditional
LayerNorm are all fields of `ModelConfig`. Plain `nn.Module`: no Lightning, Optuna or W&B here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import torch
from torch import Tensor, nn

from attnlab.attention import build_attention
from attnlab.attention.base import Attention, AttentionDims, options_from_dict
from attnlab.attention.masks import AttentionMask
from attnlab.attention.registry import get_attention_class
from attnlab.model.blocks import ConditionalLayerNorm, FeedForward, Norm, Residual, init_weights
from attnlab.model.config import ModelConfig
from attnlab.model.sharing import layer_plan


def attention_dims(cfg: ModelConfig) -> AttentionDims:
    return AttentionDims(cfg.d_model, cfg.n_heads, cfg.head_key_size, cfg.head_value_size,
                         cfg.max_len, cfg.attention_dropout)


class Embeddings(nn.Module):
    """Token + learned position (+ segment) embeddings of size E, projected to D when E != D (ALBERT).
    With `condition_embedding` their LayerNorm is a Conditional LayerNorm too (bert4keras), with the
    same parameter names (`norm.weight`/`norm.bias`) so pretrained embedding norms still load."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        e = cfg.emb_size
        self.word = nn.Embedding(cfg.vocab_size, e)
        self.position = nn.Embedding(cfg.max_len, e)
        self.segment = nn.Embedding(cfg.type_vocab_size, e) if cfg.type_vocab_size else None
        # Post-norm models (BERT) normalise the embeddings; pre-norm ones (GPT-2) normalise at the end.
        self.norm: nn.Module | None = None
        if cfg.norm_position == "post":
            self.norm = (ConditionalLayerNorm(e, cfg.condition_size, cfg.condition_hidden, cfg.layer_norm_eps)
                         if cfg.condition_embedding else nn.LayerNorm(e, eps=cfg.layer_norm_eps))
        self.dropout = nn.Dropout(cfg.dropout)
        self.project = nn.Linear(e, cfg.d_model) if e != cfg.d_model else None

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None, offset: int = 0,
                condition: Tensor | None = None) -> Tensor:
        t = input_ids.shape[1]
        if offset + t > self.position.num_embeddings:
            raise ValueError(f"sequence length {offset + t} exceeds model.max_len={self.position.num_embeddings}")
        pos = torch.arange(offset, offset + t, device=input_ids.device)
        x = self.word(input_ids) + self.position(pos)[None]  # (B, T, E)
        if self.segment is not None:
            seg = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            x = x + self.segment(seg)
        if isinstance(self.norm, ConditionalLayerNorm):
            x = self.norm(x, condition)  # (B, T, E)
        elif self.norm is not None:
            x = self.norm(x)
        x = self.dropout(x)
        return self.project(x) if self.project is not None else x  # (B, T, D)


@dataclass
class DecodeCache:
    """Per-layer attention states (KV cache, RNN state, or input history) + tokens seen so far."""

    states: list[Any]
    length: int
    condition: Tensor | None = None

    def select(self, index: Tensor) -> DecodeCache:
        """Reorder/duplicate batch rows (beam search)."""
        return DecodeCache([_map_tensors(s, lambda t: t.index_select(0, index)) for s in self.states], self.length,
                           None if self.condition is None else self.condition.index_select(0, index))


def _map_tensors(obj: Any, fn: Any) -> Any:
    if isinstance(obj, Tensor):
        return fn(obj)
    if hasattr(obj, "map_tensors"):  # a state that knows how to copy itself (the dot KV cache)
        return obj.map_tensors(fn)
    if isinstance(obj, tuple):
        items = [_map_tensors(o, fn) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)  # keep NamedTuple states
    if isinstance(obj, list):
        return [_map_tensors(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    return obj


class Transformer(nn.Module):
    """`forward(input_ids (B, T), attention_mask (B, T) bool, token_type_ids, condition (B, C))` → (B, T, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.attn_order, self.ffn_order = layer_plan(cfg.sharing, cfg.n_layers)
        self.attn_pool = nn.ModuleList(self._attention_sublayer() for _ in range(max(self.attn_order) + 1))
        self.ffn_pool = nn.ModuleList(self._ffn_sublayer() for _ in range(max(self.ffn_order) + 1))
        self.final_norm = self._norm() if cfg.norm_position == "pre" else None
        init_weights(self, cfg.init_std)

    def _norm(self) -> Norm:
        c = self.cfg
        return Norm(c.d_model, c.layer_norm_eps, c.condition_size, c.condition_hidden)

    def _attention_sublayer(self) -> Residual:
        c = self.cfg
        cls = get_attention_class(c.attention.kind)
        attn = build_attention(c.attention.kind, attention_dims(c), options_from_dict(cls, c.attention.options))
        return Residual(attn, self._norm(), c.dropout, pre_norm=c.norm_position == "pre")

    def _ffn_sublayer(self) -> Residual:
        c = self.cfg
        ffn = FeedForward(c.d_model, c.d_ff, c.activation, c.dropout)
        return Residual(ffn, self._norm(), c.dropout, pre_norm=c.norm_position == "pre")

    def make_mask(self, attention_mask: Tensor | None, token_type_ids: Tensor | None) -> AttentionMask:
        segments = token_type_ids if self.cfg.mask == "prefix" else None
        if self.cfg.mask == "prefix" and segments is None:
            raise ValueError("model.mask='prefix' (UniLM) needs token_type_ids: 0 = source, 1 = target")
        padding = attention_mask.bool() if attention_mask is not None else None
        if padding is not None and bool(padding.all()):
            padding = None  # no padding: lets dot attention take the fused causal path
        return AttentionMask(self.cfg.mask, padding, segments)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        condition: Tensor | None = None,
    ) -> Tensor:
        mask = self.make_mask(attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids, condition=condition)  # (B, T, D)
        for a, f in zip(self.attn_order, self.ffn_order):
            x = self.attn_pool[a](x, mask, condition)
            x = self.ffn_pool[f](x, None, condition)
        if self.final_norm is not None:
            x = self.final_norm(x, condition)
        return x

    # ---- incremental decoding ------------------------------------------------------------
    def init_cache(self, condition: Tensor | None = None) -> DecodeCache:
        return DecodeCache([None] * self.cfg.n_layers, 0, condition)

    def prefill(self, input_ids: Tensor, token_type_ids: Tensor | None = None,
                condition: Tensor | None = None) -> tuple[Tensor, DecodeCache]:
        """Encode a prompt (no padding: one prompt length per batch) and return its decoding cache.
        For a UniLM (prefix) model the prompt is the source (segment 0); steps then add target tokens."""
        if self.cfg.mask == "prefix" and token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = self.make_mask(None, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids, condition=condition)
        states: list[Any] = []
        for a, f in zip(self.attn_order, self.ffn_order):
            sub = cast(Residual, self.attn_pool[a])
            x, state = sub.decode(x, condition, partial(cast(Attention, sub.fn).prefill, mask=mask))
            states.append(state)
            x = self.ffn_pool[f](x, None, condition)
        if self.final_norm is not None:
            x = self.final_norm(x, condition)
        return x, DecodeCache(states, input_ids.shape[1], condition)

    def step(self, input_ids: Tensor, cache: DecodeCache) -> tuple[Tensor, DecodeCache]:
        """One new token per sequence (B, 1) → hidden (B, 1, D); O(1) per token for linear attention,
        O(T) with the KV cache for dot. Target tokens of a UniLM model get segment id 1."""
        kind = self.cfg.mask
        segment = torch.full_like(input_ids, 1 if kind == "prefix" else 0)
        x = self.embeddings(input_ids, segment, offset=cache.length, condition=cache.condition)
        states: list[Any] = []
        for i, (a, f) in enumerate(zip(self.attn_order, self.ffn_order)):
            sub = cast(Residual, self.attn_pool[a])
            x, state = sub.decode(x, cache.condition, partial(cast(Attention, sub.fn).step, state=cache.states[i],
                                                              mask_kind=kind))
            states.append(state)
            x = self.ffn_pool[f](x, None, cache.condition)
        if self.final_norm is not None:
            x = self.final_norm(x, cache.condition)
        return x, DecodeCache(states, cache.length + input_ids.shape[1], cache.condition)

    def attention_modules(self) -> list[nn.Module]:
        return [sub.fn for sub in self.attn_pool]  # type: ignore[misc]

    def extra_metrics(self) -> dict[str, float]:
        """Per-layer scalars from the attention variants (mixture weights, NaN-guard counts)."""
        out: dict[str, float] = {}
        for i, attn in enumerate(self.attention_modules()):
            for k, v in attn.extra_metrics().items():  # type: ignore[operator]
                out[f"attn{i}/{k}"] = v
        return out
