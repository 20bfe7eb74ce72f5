"""Conditional LayerNorm on the embeddings too (`model.condition_embedding`, as bert4keras does):
zero-initialised, so at init it equals the plain model; once its projection is non-zero, the
condition changes the outputs through the embedding norm alone. Float64."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attnlab.config import ConfigError, ModelConfig
from attnlab.model import CausalLM, Transformer
from attnlab.model.blocks import ConditionalLayerNorm


def cfg(**kw: object) -> ModelConfig:
    base: dict[str, object] = dict(vocab_size=30, max_len=16, d_model=16, n_heads=4, n_layers=2, d_ff=32,
                                   dropout=0.0, attention_dropout=0.0, condition_size=5)
    base.update(kw)
    return ModelConfig(**base)  # type: ignore[arg-type]


def ids() -> torch.Tensor:
    return torch.randint(0, 30, (2, 7), generator=torch.Generator().manual_seed(0))


def conditions() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 5, generator=g, dtype=torch.float64), torch.randn(2, 5, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("hidden", [0, 3])
def test_embedding_cln_at_init_equals_plain_layernorm_model(hidden: int) -> None:
    plain = Transformer(cfg(condition_hidden=hidden)).double().eval()
    conditioned = Transformer(cfg(condition_hidden=hidden, condition_embedding=True)).double().eval()
    assert isinstance(conditioned.embeddings.norm, ConditionalLayerNorm)
    missing, unexpected = conditioned.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == sorted(f"embeddings.norm.{n}" for n in
                                     ["to_gamma.weight", "to_beta.weight", *(["hidden.weight"] if hidden else [])])
    c1, _ = conditions()
    assert_close(conditioned(ids(), condition=c1), plain(ids(), condition=c1))


def test_condition_reaches_the_output_through_the_embedding_norm() -> None:
    m = Transformer(cfg(condition_embedding=True)).double().eval()
    c1, c2 = conditions()
    assert_close(m(ids(), condition=c1), m(ids(), condition=c2))  # every CLN still zero: no effect
    with torch.no_grad():
        m.embeddings.norm.to_gamma.weight.normal_(0.0, 0.5)  # type: ignore[union-attr]
    assert not torch.allclose(m(ids(), condition=c1), m(ids(), condition=c2)), "embedding CLN ignores the condition"
    with pytest.raises(ValueError, match="condition"):
        m(ids())


def test_embedding_cln_cached_decoding_equals_recompute() -> None:
    torch.manual_seed(0)
    m = CausalLM(cfg(condition_embedding=True, mask="causal")).double().eval()
    with torch.no_grad():
        m.transformer.embeddings.norm.to_beta.weight.normal_(0.0, 0.5)  # type: ignore[union-attr]
    c1, _ = conditions()
    seq = ids()
    full = m(seq, condition=c1)
    logits, cache = m.prefill(seq[:, :3], condition=c1)
    steps = [logits]
    for t in range(3, 7):
        logits, cache = m.step(seq[:, t : t + 1], cache)
        steps.append(logits)
    assert_close(torch.stack(steps, 1)[:, :-1], full[:, 2:6])


@pytest.mark.parametrize("bad", [{"condition_size": 0}, {"norm_position": "pre"}])
def test_condition_embedding_needs_a_condition_and_an_embedding_norm(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="condition_embedding"):
        cfg(condition_embedding=True, **bad).validate()
