"""Reading-comprehension heads on the shared Transformer, as in BERT (Devlin et al., 2019):
span extraction (SQuAD: one linear map from each token's state to a start and an end logit) and
multiple choice (SWAG: a score for each (context, choice) sequence from its pooled [CLS] state,
compared across the choices by a softmax in the training module)."""

from __future__ import annotations

from torch import Tensor, nn

from attnlab.model.blocks import init_weights
from attnlab.model.config import ModelConfig
from attnlab.model.transformer import Transformer


class SpanExtractor(nn.Module):
    """Token states → (start logits (B, T), end logits (B, T))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.transformer = Transformer(cfg)
        self.span = nn.Linear(cfg.d_model, 2)
        init_weights(self.span, cfg.init_std)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.transformer(input_ids, attention_mask, token_type_ids)  # (B, T, D)
        start, end = self.span(h).unbind(dim=-1)  # (B, T) each
        return start, end


class MultipleChoiceScorer(nn.Module):
    """Pooled first token ([CLS]) → dense+tanh (BERT pooler) → one score per sequence (N,)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.transformer = Transformer(cfg)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.scorer = nn.Linear(cfg.d_model, 1)
        init_weights(self.pooler, cfg.init_std)
        init_weights(self.scorer, cfg.init_std)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        h = self.transformer(input_ids, attention_mask, token_type_ids)  # (N, T, D)
        pooled = self.pooler(h[:, 0]).tanh()  # (N, D)
        return self.scorer(self.dropout(pooled)).squeeze(-1)  # (N,)
