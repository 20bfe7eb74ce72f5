"""Incremental decoding (KV cache, recurrent state, input history) == recomputing the whole sequence."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attnlab.attention import ATTENTION
from attnlab.config import AttentionConfig, ModelConfig, from_dict
from attnlab.model import CausalLM
from attnlab.model.generation import GenerationConfig, filter_logits, generate


def lm(kind: str, mask: str = "causal", **kw: object) -> CausalLM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=40, max_len=32, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0,
                      attention_dropout=0.0, mask=mask, norm_position="pre",
                      attention=from_dict(AttentionConfig, {"kind": kind}), **kw)  # type: ignore[arg-type]
    model = CausalLM(cfg).double().eval()
    for p in model.parameters():  # sharpen the distribution so greedy choices are well separated
        p.data.mul_(8.0) if p.dim() == 2 else None
    return model


@pytest.mark.parametrize("kind", sorted(ATTENTION))
@pytest.mark.parametrize("mask", ["causal", "prefix"])
def test_incremental_logits_equal_full_recompute(kind: str, mask: str) -> None:
    model = lm(kind, mask, sharing="all")
    ids = torch.randint(0, 40, (2, 10), generator=torch.Generator().manual_seed(1))
    types = torch.zeros_like(ids)
    if mask == "prefix":
        types[:, 4:] = 1
    full = model(ids, None, types)
    logits, cache = model.prefill(ids[:, :4], types[:, :4])
    steps = [logits]
    for t in range(4, 10):
        logits, cache = model.step(ids[:, t : t + 1], cache)
        steps.append(logits)
    assert_close(torch.stack(steps, 1)[:, :-1], full[:, 3:9])


@pytest.mark.parametrize("kind", ["dot", "linear", "talking_heads", "synthesizer_random_dot"])
@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
@pytest.mark.parametrize("mask", ["causal", "prefix"])
def test_cached_generation_yields_same_tokens(kind: str, strategy: str, mask: str) -> None:
    model = lm(kind, mask)
    prompt = torch.randint(0, 40, (2, 5), generator=torch.Generator().manual_seed(2))
    cfg = GenerationConfig(max_new_tokens=8, strategy=strategy, top_k=10, top_p=0.9, seed=3, num_beams=3)
    cached = generate(model, prompt, cfg, use_cache=True)
    full = generate(model, prompt, cfg, use_cache=False)
    assert cached.shape == (2, 8)
    assert torch.equal(cached, full)


def test_generation_from_empty_cache_and_eos() -> None:
    model = lm("linear")
    start = torch.zeros(3, 1, dtype=torch.long)
    out = generate(model, start, GenerationConfig(max_new_tokens=6, eos_id=int(model(start)[0, -1].argmax())))
    assert (out[:, 0] == out[0, 0]).all() and out.shape[1] == 1  # everyone hit EOS at once: stop


def test_beam_search_finds_at_least_greedy_score() -> None:
    model = lm("dot")
    prompt = torch.randint(0, 40, (1, 4), generator=torch.Generator().manual_seed(5))

    @torch.no_grad()
    def logprob(tokens: torch.Tensor) -> float:
        seq = torch.cat([prompt, tokens[None]], 1)
        lp = model(seq).log_softmax(-1)[0, prompt.shape[1] - 1 : -1]
        return float(lp.gather(1, tokens[:, None]).sum())

    greedy = generate(model, prompt, GenerationConfig(max_new_tokens=5))[0]
    beam = generate(model, prompt, GenerationConfig(max_new_tokens=5, strategy="beam", num_beams=4,
                                                    length_penalty=0.0))[0]
    assert logprob(beam) >= logprob(greedy) - 1e-9


def test_filter_logits_top_k_top_p() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, 2, 1.0)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, 0, 0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.64 < 0.7 needs the second token


def test_kv_cache_growth_keeps_every_token() -> None:
    """Past several buffer doublings (16 → 32 → 64), cached logits still equal the full recompute."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=40, max_len=80, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                      attention_dropout=0.0, mask="causal", norm_position="pre")
    m = CausalLM(cfg).double().eval()
    ids = torch.randint(0, 40, (2, 70), generator=torch.Generator().manual_seed(4))
    full = m(ids)
    logits, cache = m.prefill(ids[:, :3])
    steps = [logits]
    for t in range(3, 70):
        logits, cache = m.step(ids[:, t : t + 1], cache)
        steps.append(logits)
    assert_close(torch.stack(steps, 1)[:, :-1], full[:, 2:69])
    keys = cache.states[0].keys
    assert keys.shape[2] >= 70 and cache.states[0].length == 70
