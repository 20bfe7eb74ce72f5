"""The shared Transformer: embeddings → blocks → (heads in `heads.py`).

One module serves as encoder (BERT/ALBERT), left-to-right LM (GPT-2) or UniLM seq2seq model:
the mask kind, the attention variant, cross-layer sharing, key/value sizes and Conditional
LayerNorm are all fields of `ModelConfig`. Plain `nn.Module`: no Lightning, Optuna or W&B here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnlab.attention import build_attention
from attnlab.attention.base import AttentionDims, options_from_dict
from attnlab.attention.registry import get_attention_class
from attnlab.config import ModelConfig
from attnlab.model.blocks import FeedForward, Norm, Residual, init_weights
from attnlab.model.masks import AttentionMask
from attnlab.model.sharing import layer_plan


def attention_dims(cfg: ModelConfig) -> AttentionDims:
    return AttentionDims(cfg.d_model, cfg.n_heads, cfg.head_key_size, cfg.head_value_size,
                         cfg.max_len, cfg.attention_dropout)


class Embeddings(nn.Module):
    """Token + learned position (+ segment) embeddings of size E, projected to D when E != D (ALBERT)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        e = cfg.emb_size
        self.word = nn.Embedding(cfg.vocab_size, e)
        self.position = nn.Embedding(cfg.max_len, e)
        self.segment = nn.Embedding(cfg.type_vocab_size, e) if cfg.type_vocab_size else None
        # Post-norm models (BERT) normalise the embeddings; pre-norm ones (GPT-2) normalise at the end.
        self.norm = nn.LayerNorm(e, eps=cfg.layer_norm_eps) if cfg.norm_position == "post" else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.project = nn.Linear(e, cfg.d_model) if e != cfg.d_model else None

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None, offset: int = 0) -> Tensor:
        t = input_ids.shape[1]
        if offset + t > self.position.num_embeddings:
            raise ValueError(f"sequence length {offset + t} exceeds model.max_len={self.position.num_embeddings}")
        pos = torch.arange(offset, offset + t, device=input_ids.device)
        x = self.word(input_ids) + self.position(pos)[None]  # (B, T, E)
        if self.segment is not None:
            seg = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            x = x + self.segment(seg)
        if self.norm is not None:
            x = self.norm(x)
        x = self.dropout(x)
        return self.project(x) if self.project is not None else x  # (B, T, D)


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
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, D)
        for a, f in zip(self.attn_order, self.ffn_order):
            x = self.attn_pool[a](x, mask, condition)
            x = self.ffn_pool[f](x, None, condition)
        if self.final_norm is not None:
            x = self.final_norm(x, condition)
        return x

    def attention_modules(self) -> list[nn.Module]:
        return [sub.fn for sub in self.attn_pool]  # type: ignore[misc]

    def extra_metrics(self) -> dict[str, float]:
        """Per-layer scalars from the attention variants (mixture weights, NaN-guard counts)."""
        out: dict[str, float] = {}
        for i, attn in enumerate(self.attention_modules()):
            for k, v in attn.extra_metrics().items():  # type: ignore[operator]
                out[f"attn{i}/{k}"] = v
        return out
