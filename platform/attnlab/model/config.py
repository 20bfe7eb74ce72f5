"""Model configuration: the typed, frozen dataclasses the Transformer is built from, and their checks.

Lives in `model/` so the model imports nothing above it; the YAML loader (`attnlab.config`) builds these.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass, field
from typing import Any

from attnlab.attention import get_attention_class
from attnlab.attention.base import AttentionDims
from attnlab.attention.masks import MASK_KINDS
from attnlab.errors import ConfigError

SHARING = ("none", "all", "attention", "ffn")
NORM_POSITIONS = ("post", "pre")
ACTIVATIONS = ("gelu", "relu", "gelu_new")


@dataclass(frozen=True)
class AttentionConfig:
    """`kind` picks the registered variant; every other YAML key is one of that variant's options."""

    kind: str = "dot"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8000
    max_len: int = 128
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 512
    key_size: int | None = None  # per-head q/k size; None → d_model // n_heads
    value_size: int | None = None  # per-head v size; None → d_model // n_heads
    embedding_size: int | None = None  # ALBERT factorized embedding; None → d_model
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    norm_position: str = "post"  # post: BERT/ALBERT; pre: GPT-2
    layer_norm_eps: float = 1e-12
    mask: str = "bidirectional"  # bidirectional | causal | prefix (UniLM)
    sharing: str = "none"  # none | all (ALBERT) | attention | ffn
    condition_size: int = 0  # > 0 turns every LayerNorm into a Conditional LayerNorm
    condition_hidden: int = 0  # optional low-rank hidden layer inside CLN
    condition_embedding: bool = False  # also condition the embedding LayerNorm (bert4keras does; post-norm only)
    init_std: float = 0.02
    init_from: str | None = None  # a checkpoint to start from: HF directory or attnlab .ckpt
    untie: bool = False  # after loading init_from with `sharing`, give every layer its own copy
    attention: AttentionConfig = field(default_factory=AttentionConfig)

    @property
    def head_key_size(self) -> int:
        return self.key_size or self.d_model // self.n_heads

    @property
    def head_value_size(self) -> int:
        return self.value_size or self.d_model // self.n_heads

    @property
    def emb_size(self) -> int:
        return self.embedding_size or self.d_model

    def validate(self) -> None:
        for key in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers", "d_ff"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("key_size", "value_size", "embedding_size"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ConfigError(f"model.{key}: must be >= 1 or null, got {v}")
        if self.key_size is None and self.d_model % self.n_heads:
            raise ConfigError(
                f"model.n_heads: d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                "set model.key_size/value_size explicitly"
            )
        for key, valid in (("sharing", SHARING), ("norm_position", NORM_POSITIONS), ("activation", ACTIVATIONS)):
            _check_choice(f"model.{key}", getattr(self, key), valid)
        _check_choice("model.mask", self.mask, MASK_KINDS)
        for key in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"model.{key}: must be in [0, 1), got {getattr(self, key)}")
        if self.condition_embedding and (self.condition_size < 1 or self.norm_position != "post"):
            raise ConfigError("model.condition_embedding: needs model.condition_size > 0 and norm_position='post' "
                              "(only post-norm models have an embedding LayerNorm)")
        try:
            cls = get_attention_class(self.attention.kind)
        except ValueError as e:
            raise ConfigError(f"model.attention.kind: {e}") from None
        dims = AttentionDims(self.d_model, self.n_heads, self.head_key_size, self.head_value_size,
                             self.max_len, self.attention_dropout)
        try:
            cls.check_config(dims, self.mask)
        except ValueError as e:
            raise ConfigError(f"model.attention: {e}") from None



def _check_choice(key: str, value: str, valid: typing.Iterable[str]) -> None:
    valid = list(valid)
    if value not in valid:
        close = difflib.get_close_matches(str(value), valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key}: unknown value {value!r}.{hint} Valid: {', '.join(valid)}")
