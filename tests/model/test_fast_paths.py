"""Every fast path against its explicit slow reference, float64, outputs and every gradient
(issue #12): fused synthesizers and talking-heads (`explicit`), the biased-attention kernel with its
blockwise backward, linear attention's O(T)-memory autograd function and its fused decoding step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

import attnlab.attention.fused as fused
import attnlab.attention.linear_kernels as lk
from attnlab.attention import ATTENTION, AttentionDims
from attnlab.attention.linear import LinearAttention, LinearOptions
from attnlab.attention.masks import AttentionMask

B, T, D, H = 2, 9, 16, 4
TOL = {"atol": 1e-12, "rtol": 1e-12}  # the issue's parity bound for the fused forms
FAST = sorted(n for n, cls in ATTENTION.items() if hasattr(cls, "explicit"))
DIMS = {"default": AttentionDims(D, H, 4, 4, 12), "decoupled": AttentionDims(D, H, 5, 3, 12)}


def masks() -> dict[str, AttentionMask]:
    pad = torch.ones(B, T, dtype=torch.bool)
    pad[0, 6:] = False
    seg = torch.zeros(B, T, dtype=torch.long)
    seg[:, 5:] = 1
    return {"none": AttentionMask("bidirectional"), "padding": AttentionMask("bidirectional", pad),
            "causal": AttentionMask("causal"), "causal+padding": AttentionMask("causal", pad),
            "prefix": AttentionMask("prefix", pad, seg)}


def x64(seed: int = 0) -> Tensor:
    return torch.randn(B, T, D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed), requires_grad=True)


def outputs_and_grads(fn: object, x: Tensor, params: list[Tensor], seed: int = 1) -> list[Tensor]:
    out = fn(x)  # type: ignore[operator]
    g = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
    return [out, *torch.autograd.grad(out, [x, *params], g)]


def test_fast_path_variants_are_the_ones_issue_12_names() -> None:
    assert {"talking_heads", "synthesizer_random", "synthesizer_random_dot", "synthesizer_dense_dot"} <= set(FAST)


@pytest.mark.parametrize("dims", list(DIMS), ids=list(DIMS))
@pytest.mark.parametrize("mask_name", list(masks()))
@pytest.mark.parametrize("name", FAST)
def test_fast_path_equals_explicit(name: str, mask_name: str, dims: str) -> None:
    options = {"h_k": 6, "h_v": 2} if name == "talking_heads" and dims == "decoupled" else {}
    cls = ATTENTION[name]
    layer = cls(DIMS[dims], cls.Options(**options)).double()
    with torch.no_grad():  # away from the identity / zero init: mixers that mix, mixtures that mix
        for p in layer.parameters():
            p.add_(0.3 * torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(p.numel())))
    mask = masks()[mask_name]
    params = list(layer.parameters())
    fast = outputs_and_grads(lambda x: layer(x, mask), x64(), params)
    slow = outputs_and_grads(lambda x: layer.explicit(x, mask), x64(), params)
    for a, b in zip(fast, slow):
        assert_close(a, b, **TOL)


@pytest.mark.parametrize("name", FAST)
def test_attention_dropout_falls_back_to_the_explicit_form(name: str) -> None:
    dims = AttentionDims(D, H, 4, 4, 12, dropout=0.5)
    layer = ATTENTION[name](dims).double().train()
    x = x64()
    torch.manual_seed(3)
    a = layer(x, AttentionMask("bidirectional"))
    torch.manual_seed(3)
    assert_close(a, layer.explicit(x, AttentionMask("bidirectional")))  # same dropout draws: the same form


def test_talking_heads_fused_path_has_no_quadratic_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused form never calls the explicit einsum/softmax over (B, h, T, T)."""
    import attnlab.attention.talking_heads as th

    monkeypatch.setattr(th, "masked_softmax", lambda *a: pytest.fail("explicit softmax on the fused path"))
    layer = ATTENTION["talking_heads"](DIMS["default"]).double()
    layer(x64(), AttentionMask("causal")).sum().backward()


def test_random_synthesizer_softmax_once_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import attnlab.attention.synthesizer as syn

    shapes: list[tuple[int, ...]] = []
    original = syn.masked_softmax

    def spy(logits: Tensor, allowed: Tensor | None) -> Tensor:
        shapes.append(tuple(logits.shape))
        return original(logits, allowed)

    monkeypatch.setattr(syn, "masked_softmax", spy)
    layer = ATTENTION["synthesizer_random"](DIMS["default"]).double()
    layer(x64(), AttentionMask("causal"))
    assert shapes == [(H, T, T)]  # one (H, T, T) softmax for the whole batch of B = 2


# ---- the biased-attention kernel (fused.py) ----------------------------------------------------
def explicit_biased(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float) -> Tensor:
    return torch.softmax(q @ k.transpose(-1, -2) * scale + bias, dim=-1) @ v


@pytest.mark.parametrize("bias_batch", [1, B])
@pytest.mark.parametrize("block", [fused.BLOCK_ELEMENTS, 3 * H * T])  # one block; three rows per block
def test_biased_attention_equals_explicit(bias_batch: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "BLOCK_ELEMENTS", block)
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(B, H, T, 5, dtype=torch.float64, generator=gen, requires_grad=True) for _ in range(2))
    v = torch.randn(B, H, T, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    bias = torch.randn(bias_batch, H, T, T, dtype=torch.float64, generator=gen, requires_grad=True)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    fast = outputs_and_grads(lambda b: fused.attend_with_bias(q, k, v, b.masked_fill(~allowed, -math.inf), 0.4),
                             bias, [q, k, v])
    slow = outputs_and_grads(lambda b: explicit_biased(q, k, v, b.masked_fill(~allowed, -math.inf), 0.4), bias, [q, k, v])
    for a, b in zip(fast, slow):
        assert_close(a, b, **TOL)
    assert torch.autograd.gradcheck(lambda *t: fused.attend_with_bias(*t, 0.4), (q, k, v, bias), fast_mode=True)


# ---- linear attention ----------------------------------------------------------------------------
def linear_explicit(q: Tensor, k: Tensor, v: Tensor, keep: Tensor | None, kind: str, eps: float) -> Tensor:
    """O(T²) normalised-kernel form on (B, T, H, d) inputs."""
    fq, fk, vv = lk.feature_map(q.transpose(1, 2), kind), lk.feature_map(k.transpose(1, 2), kind), v.transpose(1, 2)
    if keep is not None:
        fk, vv = fk * keep[:, None], vv * keep[:, None]
    sim = fq @ fk.transpose(-1, -2)  # (B, H, T, T)
    return ((sim @ vv) / (sim.sum(-1, keepdim=True) + eps)).transpose(1, 2)


@pytest.mark.parametrize("rows", [lk.ROWS, 4])  # one block; several (T = 9 → 3 blocks)
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("kind", lk.FEATURE_MAPS)
def test_linear_noncausal_function_equals_explicit(kind: str, padded: bool, rows: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lk, "ROWS", rows)
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(B, T, H, 5, dtype=torch.float64, generator=gen, requires_grad=True) for _ in range(2))
    v = torch.randn(B, T, H, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    keep = None
    if padded:
        keep = torch.ones(B, T, 1, dtype=torch.float64)
        keep[0, 6:] = 0
    fast = outputs_and_grads(lambda q_: lk.linear_noncausal_fused(q_, k, v, keep, kind, 1e-6), q, [k, v])
    slow = outputs_and_grads(lambda q_: linear_explicit(q_, k, v, keep, kind, 1e-6), q, [k, v])
    for a, b in zip(fast, slow):
        assert_close(a, b, **TOL)
    assert torch.autograd.gradcheck(lambda *t: lk.linear_noncausal_fused(*t, keep, kind, 1e-6), (q, k, v), fast_mode=True)


def test_feature_map_elu_form_equals_elu_plus_one() -> None:
    x = torch.linspace(-30, 30, 1001, dtype=torch.float64)
    assert_close(lk.feature_map(x, "elu"), torch.nn.functional.elu(x) + 1, atol=1e-15, rtol=1e-15)


def _steps(layer: LinearAttention, x: Tensor, grad: bool) -> Tensor:
    state, out = None, []
    with torch.set_grad_enabled(grad):
        for t in range(x.shape[1]):
            y, state = layer.step(x[:, t : t + 1], state)
            out.append(y)
    return torch.cat(out, dim=1)


@pytest.mark.parametrize("kind", lk.FEATURE_MAPS)
def test_fused_decoding_step_equals_unfused_and_forward(kind: str) -> None:
    layer = LinearAttention(AttentionDims(D, H, 5, 3, 12), LinearOptions(feature_map=kind)).double().eval()
    x = x64(2).detach()
    fused_steps = _steps(layer, x, grad=False)  # no grad: the fused decoding kernel
    plain_steps = _steps(layer, x, grad=True)  # grad enabled: the unfused path
    assert_close(fused_steps, plain_steps.detach(), **TOL)
    with torch.no_grad():
        assert_close(fused_steps, layer(x, AttentionMask("causal")))


def test_fused_decoding_weights_follow_in_place_updates() -> None:
    """The cached fused q/k/v weight is rebuilt when a projection changes in place (optimiser step)."""
    layer = LinearAttention(AttentionDims(D, H, 4, 4, 12)).double().eval()
    x = x64(4).detach()
    before = _steps(layer, x, grad=False)
    with torch.no_grad():
        layer.proj.value.weight.mul_(2.0)
        layer.proj.key.bias.add_(0.5)
    after = _steps(layer, x, grad=False)
    assert not torch.allclose(before, after)
    assert_close(after, _steps(layer, x, grad=True).detach(), **TOL)
