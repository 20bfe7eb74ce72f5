"""Parity against slow, explicit references in float64 (never snapshots)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.testing import assert_close

from attnlab.attention import AttentionDims, build_attention
from attnlab.attention.linear import LinearAttention, LinearOptions, feature_map
from attnlab.attention.masks import AttentionMask, prefix_mask
from attnlab.attention.talking_heads import TalkingHeadsAttention, TalkingHeadsOptions

B, T, D, H = 2, 7, 16, 4
DIMS = AttentionDims(d_model=D, n_heads=H, key_size=4, value_size=4, max_len=16)
WIDE = AttentionDims(d_model=D, n_heads=H, key_size=8, value_size=6, max_len=16)  # key_size decoupled


def x64(seed: int = 0, t: int = T) -> Tensor:
    return torch.randn(B, t, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def masks() -> dict[str, AttentionMask]:
    pad = torch.ones(B, T, dtype=torch.bool)
    pad[0, 5:] = False
    seg = torch.zeros(B, T, dtype=torch.long)
    seg[:, 4:] = 1
    return {
        "none": AttentionMask("bidirectional"),
        "padding": AttentionMask("bidirectional", pad),
        "causal": AttentionMask("causal"),
        "causal+padding": AttentionMask("causal", pad),
        "prefix": AttentionMask("prefix", pad, seg),
    }


def explicit_allowed(mask: AttentionMask) -> Tensor:
    """The mask written out independently of AttentionMask.dense: (B, T, T)."""
    allowed = torch.ones(B, T, T, dtype=torch.bool)
    i = torch.arange(T)
    if mask.kind == "causal":
        allowed &= i[None, :] <= i[:, None]
    if mask.kind == "prefix":
        assert mask.segment_ids is not None
        for b in range(B):
            src = mask.segment_ids[b] == 0
            for q in range(T):
                allowed[b, q] = src if src[q] else (src | (i <= q))
    if mask.key_padding is not None:
        allowed &= mask.key_padding[:, None, :]
    return allowed


def heads(a: Tensor) -> Tensor:
    return a.view(B, a.shape[1], H, -1).transpose(1, 2)


@pytest.mark.parametrize("dims", [DIMS, WIDE], ids=["default", "wide_key"])
@pytest.mark.parametrize("mask_name", list(masks()))
def test_dot_equals_explicit_softmax(dims: AttentionDims, mask_name: str) -> None:
    m = build_attention("dot", dims).double().eval()
    mask = masks()[mask_name]
    x = x64()
    p = m.proj
    q, k, v = heads(p.query(x)), heads(p.key(x)), heads(p.value(x))
    logits = q @ k.transpose(-1, -2) / math.sqrt(dims.key_size)
    allowed = explicit_allowed(mask)[:, None]
    w = torch.softmax(logits.masked_fill(~allowed, -math.inf), -1)
    ref = p.output((w @ v).transpose(1, 2).reshape(B, T, -1))
    real = explicit_allowed(mask).any(-1)  # rows that are real queries
    assert_close(m(x, mask)[real], ref[real])


def linear_explicit(m: LinearAttention, x: Tensor, mask: AttentionMask) -> Tensor:
    """O(T²) normalised kernel form: V'_i = Σ_j sim(i,j) V_j / Σ_j sim(i,j), sim = φ(q)·φ(k) over allowed j."""
    p = m.proj
    fm = m.options.feature_map
    q, k, v = feature_map(heads(p.query(x)), fm), feature_map(heads(p.key(x)), fm), heads(p.value(x))
    sim = (q @ k.transpose(-1, -2)) * explicit_allowed(mask)[:, None]  # (B, H, T, T)
    out = (sim @ v) / (sim.sum(-1, keepdim=True) + m.options.eps)
    return p.output(out.transpose(1, 2).reshape(B, T, -1))


@pytest.mark.parametrize("fm", ["elu", "relu", "softmax"])
@pytest.mark.parametrize("mask_name", list(masks()))
@pytest.mark.parametrize("impl", ["chunked", "cumsum"])
def test_linear_equals_explicit_kernel_form(fm: str, mask_name: str, impl: str) -> None:
    m = LinearAttention(WIDE, LinearOptions(feature_map=fm, chunk_size=3, causal_impl=impl)).double().eval()
    mask = masks()[mask_name]
    x = x64()
    real = explicit_allowed(mask).any(-1)
    assert_close(m(x, mask)[real], linear_explicit(m, x, mask)[real])


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_causal_linear_chunked_equals_recurrent(chunk: int) -> None:
    m = LinearAttention(WIDE, LinearOptions(chunk_size=chunk)).double().eval()
    x = x64(3)
    parallel = m(x, AttentionMask("causal"))
    state = m.init_state(B, x.device, x.dtype)
    steps = []
    for t in range(T):
        y, state = m.step(x[:, t : t + 1], state)
        steps.append(y)
    assert_close(torch.cat(steps, dim=1), parallel)
    cumsum = LinearAttention(WIDE, LinearOptions(causal_impl="cumsum")).double().eval()
    cumsum.load_state_dict(m.state_dict())
    assert_close(cumsum(x, AttentionMask("causal")), parallel)


def test_linear_accumulates_in_fp32_under_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    import attnlab.attention.linear as lin

    seen: list[torch.dtype] = []
    original = lin.linear_causal_chunked

    def spy(q: Tensor, k: Tensor, v: Tensor, eps: float, chunk: int) -> Tensor:
        seen.extend([q.dtype, k.dtype, v.dtype])
        out = original(q, k, v, eps, chunk)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(lin, "linear_causal_chunked", spy)
    m = LinearAttention(DIMS).eval()
    x = torch.randn(B, 256, D) * 30
    ref = m(x, AttentionMask("causal"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x, AttentionMask("causal"))
    assert seen and all(dt == torch.float32 for dt in seen), seen
    assert torch.isfinite(out).all()
    assert_close(out.float(), ref, atol=0.5, rtol=0.05)  # only the projections ran in bf16


def test_linear_nan_guard_counts_and_zeroes() -> None:
    m = LinearAttention(DIMS, LinearOptions(feature_map="relu", nan_guard=True)).double().eval()
    with torch.no_grad():
        m.proj.key.weight.fill_(-1.0)  # relu(k) = 0 everywhere → 0/eps is finite; force inf instead
        m.proj.key.bias.fill_(math.inf)
    out = m(x64(), AttentionMask("bidirectional"))
    assert torch.isfinite(out).all()
    assert m.extra_metrics()["nan_guard_events"] > 0


def test_talking_heads_at_init_equals_dot() -> None:
    mask = masks()["prefix"]
    dot = build_attention("dot", WIDE).double().eval()
    th = TalkingHeadsAttention(WIDE).double().eval()
    th.proj.load_state_dict(dot.proj.state_dict())
    x = x64()
    assert_close(th(x, mask), dot(x, mask))
    with torch.no_grad():
        th.pre_mix.add_(0.3)
    assert not torch.allclose(th(x, mask), dot(x, mask)), "mixers have no effect"


def test_talking_heads_different_key_and_value_heads() -> None:
    th = TalkingHeadsAttention(DIMS, TalkingHeadsOptions(h_k=6, h_v=2)).double()
    assert th.pre_mix.shape == (6, H) and th.post_mix.shape == (H, 2)
    out = th(x64(), masks()["padding"])
    assert out.shape == (B, T, D)
    n_extra = 6 * H + H * 2
    assert sum(p.numel() for p in (th.pre_mix, th.post_mix)) == n_extra


def test_prefix_mask_matches_definition() -> None:
    seg = torch.tensor([[0, 0, 0, 1, 1, 1, 1]])
    got = prefix_mask(seg)[0]
    for i in range(7):
        for j in range(7):
            expected = (j < 3) if i < 3 else (j < 3 or j <= i)
            assert bool(got[i, j]) == expected, (i, j)


def test_prefix_mask_rejects_non_prefix_segments() -> None:
    with pytest.raises(ValueError, match="source then target"):
        AttentionMask("prefix", None, torch.tensor([[0, 1, 0, 1]]))


def test_sdpa_path_matches_manual_under_fp64_causal(monkeypatch: pytest.MonkeyPatch) -> None:
    import attnlab.attention.dot as dot

    calls: list[tuple[bool, bool]] = []  # (is_causal, attn_mask given) per SDPA call
    original = F.scaled_dot_product_attention

    def spy(*args: object, **kw: object) -> Tensor:
        calls.append((bool(kw.get("is_causal", False)), kw.get("attn_mask") is not None))
        return original(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dot.F, "scaled_dot_product_attention", spy)
    m = build_attention("dot", DIMS).double().eval()
    x = x64()
    fused = m(x, AttentionMask("causal"))  # is_causal fast path
    explicit = m(x, AttentionMask("causal", torch.ones(B, T, dtype=torch.bool)))  # explicit mask path
    assert_close(fused, explicit)
    assert calls == [(True, False), (False, True)], calls  # each path really taken, never both flags
