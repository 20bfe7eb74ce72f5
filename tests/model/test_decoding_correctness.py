"""Cached decoding against the full recompute, float64: decoupled key/value sizes (issue #12 item 1),
branching from one cache (item 4), and the NaN guard in `step` (item 3)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from attnlab.attention import ATTENTION, AttentionDims
from attnlab.attention.dot import KVCache
from attnlab.attention.linear import LinearAttention, LinearOptions
from attnlab.attention.masks import AttentionMask
from attnlab.config import AttentionConfig, ModelConfig, from_dict
from attnlab.model import CausalLM
from attnlab.model.generation import GenerationConfig, generate

DECOUPLED = AttentionDims(d_model=12, n_heads=3, key_size=5, value_size=7, max_len=16)


def x64(b: int, t: int, d: int, seed: int = 0) -> Tensor:
    return torch.randn(b, t, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def lm(kind: str = "dot", mask: str = "causal", **kw: object) -> CausalLM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=40, max_len=32, d_model=12, n_heads=3, n_layers=2, d_ff=24, dropout=0.0,
                      attention_dropout=0.0, mask=mask, norm_position="pre",
                      attention=from_dict(AttentionConfig, {"kind": kind}), **kw)  # type: ignore[arg-type]
    model = CausalLM(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():  # sharpen the distribution so greedy choices are well separated
            if p.dim() == 2:
                p.mul_(8.0)
    return model


# ---- item 1: key_size != value_size -----------------------------------------------------------
@pytest.mark.parametrize("mask", ["causal", "prefix", "bidirectional"])
def test_dot_prefill_with_decoupled_sizes_equals_forward(mask: str) -> None:
    """The CPU math fallback (dk != dv) rejects attn_mask together with is_causal=True."""
    m = ATTENTION["dot"](DECOUPLED).double().eval()
    x = x64(2, 6, 12)
    seg = torch.tensor([[0, 0, 0, 1, 1, 1]] * 2)
    am = AttentionMask(mask, None, seg if mask == "prefix" else None)
    out, cache = m.prefill(x, am)
    assert_close(out, m(x, am))
    k, v = cache.view()
    assert k.shape == (2, 3, 6, 5) and v.shape == (2, 3, 6, 7)


def test_dot_steps_with_decoupled_sizes_equal_causal_forward() -> None:
    m = ATTENTION["dot"](DECOUPLED).double().eval()
    x = x64(2, 9, 12, seed=1)
    out, state = m.prefill(x[:, :4], AttentionMask("causal"))
    steps = [out]
    for t in range(4, 9):
        y, state = m.step(x[:, t : t + 1], state, "causal")
        steps.append(y)
    assert_close(torch.cat(steps, dim=1), m(x, AttentionMask("causal")))


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
@pytest.mark.parametrize("mask", ["causal", "prefix"])
def test_generate_with_decoupled_sizes_cache_equals_recompute(strategy: str, mask: str) -> None:
    model = lm("dot", mask, key_size=5, value_size=7)
    prompt = torch.randint(0, 40, (2, 5), generator=torch.Generator().manual_seed(2))
    cfg = GenerationConfig(max_new_tokens=8, strategy=strategy, top_k=10, seed=3, num_beams=3)
    cached = generate(model, prompt, cfg, use_cache=True)
    full = generate(model, prompt, cfg, use_cache=False)
    assert cached.shape == (2, 8)
    assert torch.equal(cached, full)


# ---- item 4: two steps from the same cache ----------------------------------------------------
def _logits_after(model: CausalLM, ids: Tensor) -> Tensor:
    return model(ids)[:, -1]


@pytest.mark.parametrize("kind", sorted(ATTENTION))
def test_branching_from_one_cache_keeps_both_branches_exact(kind: str) -> None:
    """Step twice from the same cache (two candidate next tokens): each branch must equal the full
    recompute of its own sequence — the first branch must not see the second's token."""
    model = lm(kind)
    ids = torch.randint(0, 40, (2, 4), generator=torch.Generator().manual_seed(4))
    a = torch.full((2, 1), 7)
    b = torch.full((2, 1), 11)
    _, cache = model.prefill(ids)
    _, cache = model.step(ids[:, -1:] * 0 + 3, cache)  # one step first: the KV buffer has spare room
    base = torch.cat([ids, torch.full((2, 1), 3)], dim=1)
    logits_a, cache_a = model.step(a, cache)
    logits_b, cache_b = model.step(b, cache)  # reuses `cache`: must not overwrite branch a's token
    assert_close(logits_b, _logits_after(model, torch.cat([base, b], 1)))
    assert_close(logits_a, _logits_after(model, torch.cat([base, a], 1)))
    # both branches keep decoding correctly (a's buffer still holds a, b's holds b)
    nxt = torch.full((2, 1), 5)
    got_a, _ = model.step(nxt, cache_a)
    got_b, _ = model.step(nxt, cache_b)
    assert_close(got_a, _logits_after(model, torch.cat([base, a, nxt], 1)))
    assert_close(got_b, _logits_after(model, torch.cat([base, b, nxt], 1)))


def test_kv_cache_detects_reuse_and_copies_only_then() -> None:
    """The fill counter shared by a buffer's caches: the tip appends in place (no copy), a stale
    cache (the buffer was written past its length by another branch) gets a private copy."""
    k = torch.zeros(1, 1, 0, 2, dtype=torch.float64)
    one = torch.ones(1, 1, 1, 2, dtype=torch.float64)
    c0 = KVCache.empty(k, k)
    c1 = c0.append(one, one)  # grows to capacity 16
    c2 = c1.append(2 * one, 2 * one)
    assert c2.keys.data_ptr() == c1.keys.data_ptr()  # the tip appends in place
    c2b = c1.append(3 * one, 3 * one)  # c1 is stale now: branch a copy
    assert c2b.keys.data_ptr() != c1.keys.data_ptr()
    assert_close(c2.view()[0][0, 0, :, 0], torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert_close(c2b.view()[0][0, 0, :, 0], torch.tensor([1.0, 3.0], dtype=torch.float64))
    c3 = c2.append(4 * one, 4 * one)  # c2 is still the tip of the original buffer
    assert c3.keys.data_ptr() == c2.keys.data_ptr()


@pytest.mark.parametrize("kind", ["dot", "linear", "talking_heads"])
def test_beam_search_with_cache_selection_equals_recompute(kind: str) -> None:
    """Beam search reorders and duplicates cache rows every step (DecodeCache.select)."""
    model = lm(kind)
    prompt = torch.randint(0, 40, (2, 3), generator=torch.Generator().manual_seed(6))
    cfg = GenerationConfig(max_new_tokens=10, strategy="beam", num_beams=4)
    assert torch.equal(generate(model, prompt, cfg, use_cache=True), generate(model, prompt, cfg, use_cache=False))


# ---- item 3: the NaN guard in step() -----------------------------------------------------------
def _forward_and_steps(m: LinearAttention, x: Tensor) -> tuple[Tensor, Tensor]:
    full = m(x, AttentionMask("causal"))
    state = None
    steps = []
    for t in range(x.shape[1]):
        y, state = m.step(x[:, t : t + 1], state)
        steps.append(y)
    return full, torch.cat(steps, dim=1)


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_nan_guard_on_step_agrees_with_forward(chunk: int) -> None:
    dims = AttentionDims(d_model=12, n_heads=3, key_size=4, value_size=4, max_len=16)
    x = x64(2, 7, 12, seed=3)
    x[1, 4] = float("nan")  # one bad token in the second sequence
    guarded = LinearAttention(dims, LinearOptions(nan_guard=True, chunk_size=chunk)).double().eval()
    full, steps = _forward_and_steps(guarded, x)
    assert torch.isfinite(full).all() and torch.isfinite(steps).all()
    assert_close(steps, full)
    plain = LinearAttention(dims, LinearOptions(causal_impl="cumsum")).double().eval()
    plain.load_state_dict(guarded.state_dict())
    ref = plain(x, AttentionMask("causal"))
    assert_close(full[0], ref[0])  # the clean sequence is untouched
    assert_close(full[1, :4], ref[1, :4])  # so are the tokens before the bad one
    # forward and steps each zeroed the same entries: 3 positions x 3 heads x value_size 4
    assert guarded.extra_metrics()["nan_guard_events"] == 2 * 3 * 3 * 4


def test_nan_guard_is_off_by_default_and_failures_show() -> None:
    dims = AttentionDims(d_model=12, n_heads=3, key_size=4, value_size=4, max_len=16)
    assert LinearOptions().nan_guard is False
    m = LinearAttention(dims).double().eval()
    x = x64(2, 7, 12, seed=3)
    x[1, 4] = float("nan")
    full, steps = _forward_and_steps(m, x)
    assert torch.isnan(full[1, 4:]).all() and torch.isnan(steps[1, 4:]).all()
    assert torch.isfinite(full[0]).all() and torch.isfinite(steps[1, :4]).all()
    # (unguarded, the chunked form also spreads nan to earlier tokens of the bad token's chunk)
    assert_close(steps[0], full[0])
    assert "nan_guard_events" not in m.extra_metrics()
