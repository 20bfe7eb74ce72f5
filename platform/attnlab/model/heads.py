"""Task heads on top of the shared Transformer."""

from __future__ import annotations

from torch import Tensor, nn

from attnlab.model.blocks import activation_fn, init_weights
from attnlab.model.config import ModelConfig
from attnlab.model.transformer import DecodeCache, Transformer


class SequenceClassifier(nn.Module):
    """Pooled first token ([CLS]) → dense+tanh (BERT pooler) → linear. `num_labels=1` is regression."""

    def __init__(self, cfg: ModelConfig, num_labels: int) -> None:
        super().__init__()
        self.transformer = Transformer(cfg)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.d_model, num_labels)
        init_weights(self.pooler, cfg.init_std)
        init_weights(self.classifier, cfg.init_std)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, condition: Tensor | None = None) -> Tensor:
        h = self.transformer(input_ids, attention_mask, token_type_ids, condition)  # (B, T, D)
        pooled = self.pooler(h[:, 0]).tanh()  # (B, D)
        return self.classifier(self.dropout(pooled))  # (B, num_labels)


class MaskedLM(nn.Module):
    """BERT MLM head: dense → act → LayerNorm → decoder tied to the word embeddings (+ bias)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.transformer = Transformer(cfg)
        e = cfg.emb_size
        self.transform = nn.Sequential(nn.Linear(cfg.d_model, e), activation_fn(cfg.activation),
                                       nn.LayerNorm(e, eps=cfg.layer_norm_eps))
        self.decoder = nn.Linear(e, cfg.vocab_size)
        init_weights(self.transform, cfg.init_std)
        nn.init.zeros_(self.decoder.bias)
        self.decoder.weight = self.transformer.embeddings.word.weight  # tied

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, condition: Tensor | None = None) -> Tensor:
        return self.logits(self.transformer(input_ids, attention_mask, token_type_ids, condition))

    def logits(self, h: Tensor) -> Tensor:
        """Hidden states (..., D) → vocabulary logits (..., V); callers may pass only the positions they score."""
        return self.decoder(self.transform(h))


class CausalLM(nn.Module):
    """LM head tied to the word embeddings (GPT-2). With `mask='prefix'` it is a UniLM seq2seq model."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.transformer = Transformer(cfg)
        e = cfg.emb_size
        self.project = nn.Linear(cfg.d_model, e, bias=False) if e != cfg.d_model else None
        if self.project is not None:
            init_weights(self.project, cfg.init_std)
        self.decoder = nn.Linear(e, cfg.vocab_size, bias=False)
        self.decoder.weight = self.transformer.embeddings.word.weight  # tied

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, condition: Tensor | None = None) -> Tensor:
        return self.logits(self.transformer(input_ids, attention_mask, token_type_ids, condition))

    def logits(self, h: Tensor) -> Tensor:
        if self.project is not None:
            h = self.project(h)
        return self.decoder(h)  # (B, T, V)

    def init_cache(self, batch_size: int, condition: Tensor | None = None) -> DecodeCache:
        """Empty cache: generation from nothing (the first step's token is usually [CLS]/BOS)."""
        del batch_size  # states are created lazily at the first step, with the right batch size
        return self.transformer.init_cache(condition)

    def prefill(self, input_ids: Tensor, token_type_ids: Tensor | None = None,
                condition: Tensor | None = None) -> tuple[Tensor, DecodeCache]:
        """Prompt → (logits of the next token (B, V), cache)."""
        h, cache = self.transformer.prefill(input_ids, token_type_ids, condition)
        return self.logits(h[:, -1]), cache

    def step(self, token_ids: Tensor, cache: DecodeCache) -> tuple[Tensor, DecodeCache]:
        """(B, 1) new tokens → (logits of the next token (B, V), cache)."""
        h, cache = self.transformer.step(token_ids, cache)
        return self.logits(h[:, -1]), cache
