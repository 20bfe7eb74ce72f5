"""Registry-wide property tests over every attention variant, each checker also shown to catch a
deliberately broken variant."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.testing import assert_close

from attnlab.attention import ATTENTION, Attention, AttentionDims, build_attention
from attnlab.attention.base import QKVProjections, merge_heads
from attnlab.attention.masks import AttentionMask

B, T, D, H = 2, 7, 16, 4
DIMS = AttentionDims(d_model=D, n_heads=H, key_size=D // H, value_size=D // H, max_len=12)
Factory = Callable[[], Attention]
ALL = sorted(ATTENTION)


def make(name: str) -> Factory:
    def factory() -> Attention:
        torch.manual_seed(1)
        m = build_attention(name, DIMS).double().eval()
        for p in m.parameters():  # non-trivial values for zero-initialised parameters
            if p.dim() == 1:
                nn.init.normal_(p, 0.0, 0.1)
        return m

    return factory


def rand_x(seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g, dtype=torch.float64)


def padding() -> Tensor:
    pad = torch.ones(B, T, dtype=torch.bool)
    pad[1, 4:] = False
    return pad


def segments() -> Tensor:
    seg = torch.zeros(B, T, dtype=torch.long)
    seg[:, 3:] = 1
    return seg


def declared_kinds(m: Attention) -> list[str]:
    """The mask kinds a variant declares (`supported_masks`); bidirectional is always supported."""
    return ["bidirectional", *(k for k in ("causal", "prefix") if k in type(m).supported_masks)]


# ---- the checkers ----------------------------------------------------------------------------
def check_shape_finite(factory: Factory) -> None:
    m = factory()
    for kind in declared_kinds(m):
        out = m(rand_x(), AttentionMask(kind, padding(), segments()))
        assert out.shape == (B, T, D)
        assert torch.isfinite(out).all(), kind


def check_gradients(factory: Factory) -> None:
    m = factory().train()
    m.zero_grad()
    out = m(rand_x(), AttentionMask("bidirectional", padding()))
    (out**2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"
        assert torch.isfinite(p.grad).all(), name


def check_batch_independence(factory: Factory) -> None:
    m = factory()
    x = rand_x()
    y = x.clone()
    y[1] = rand_x(5)[1]
    mask = AttentionMask("bidirectional")
    assert_close(m(x, mask)[0], m(y, mask)[0])


def check_padding_invariance(factory: Factory) -> None:
    m = factory()
    x = rand_x()
    y = x.clone()
    y[1, 4:] = rand_x(7)[1, 4:] * 10
    for kind in declared_kinds(m):
        mask = AttentionMask(kind, padding(), segments())
        assert_close(m(x, mask)[1, :4], m(y, mask)[1, :4], msg=f"padding leaks under {kind}")


def check_no_future_leak(factory: Factory) -> None:
    m = factory()
    if "causal" not in declared_kinds(m):
        return
    x = rand_x()
    for t in range(1, T):
        y = x.clone()
        y[:, t:] = rand_x(t + 10)[:, t:]
        mask = AttentionMask("causal")
        assert_close(m(x, mask)[:, :t], m(y, mask)[:, :t], msg=f"future leaks into positions < {t}")


def check_unilm_source_blind(factory: Factory) -> None:
    m = factory()
    if "prefix" not in declared_kinds(m):
        return
    x = rand_x()
    y = x.clone()
    y[:, 5:] = rand_x(3)[:, 5:]  # change the last target tokens
    mask = AttentionMask("prefix", None, segments())
    out_x, out_y = m(x, mask), m(y, mask)
    assert_close(out_x[:, :5], out_y[:, :5], msg="source or earlier target sees later target tokens")
    z = x.clone()
    z[:, 0] = rand_x(4)[:, 0]  # change a source token: every target position must see it
    assert not torch.allclose(m(z, mask)[:, 3:], out_x[:, 3:]), "target does not see the source"


def check_permutation_equivariance(factory: Factory, declared: bool) -> None:
    m = factory()
    x = rand_x()
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    mask = AttentionMask("bidirectional")
    equivariant = torch.allclose(m(x[:, perm], mask), m(x, mask)[:, perm], atol=1e-9)
    assert equivariant == declared, f"declared permutation_equivariant={declared}, measured {equivariant}"


CHECKERS: dict[str, Callable[[Factory], None]] = {
    "shape_finite": check_shape_finite,
    "gradients": check_gradients,
    "batch_independence": check_batch_independence,
    "padding_invariance": check_padding_invariance,
    "no_future_leak": check_no_future_leak,
    "unilm_source_blind": check_unilm_source_blind,
}


@pytest.mark.parametrize("checker", list(CHECKERS))
@pytest.mark.parametrize("name", ALL)
def test_property(name: str, checker: str) -> None:
    CHECKERS[checker](make(name))


@pytest.mark.parametrize("name", ALL)
def test_permutation_equivariance_as_declared(name: str) -> None:
    check_permutation_equivariance(make(name), ATTENTION[name].permutation_equivariant)


# ---- deliberately broken variants: every checker must catch its bug --------------------------
class _Broken(Attention):
    name: ClassVar[str] = "broken"

    def __init__(self, dims: AttentionDims) -> None:
        super().__init__(dims)
        self.proj = QKVProjections(dims.d_model, dims.n_heads, dims.key_size, dims.n_heads, dims.value_size)

    def attend(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        q, k, v = self.proj.qkv(x)
        return self.proj.output(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)))


class IgnoresMask(_Broken):
    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        return self.attend(x, None)


class MixesBatch(_Broken):
    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        return self.attend(x + x.mean(dim=0, keepdim=True), mask.dense(x.shape[1], x.device))


class DeadParameter(_Broken):
    def __init__(self, dims: AttentionDims) -> None:
        super().__init__(dims)
        self.unused = nn.Parameter(torch.ones(3))

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        return self.attend(x, mask.dense(x.shape[1], x.device))


class Infinite(_Broken):
    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        return self.attend(x, mask.dense(x.shape[1], x.device)) / 0.0


class PositionBias(_Broken):
    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        pos = torch.arange(x.shape[1], dtype=x.dtype)[None, :, None]
        return self.attend(x + pos, mask.dense(x.shape[1], x.device))


def broken(cls: type[_Broken]) -> Factory:
    def factory() -> Attention:
        torch.manual_seed(1)
        return cls(DIMS).double().eval()

    return factory


@pytest.mark.parametrize(
    ("checker", "cls"),
    [
        ("shape_finite", Infinite),
        ("gradients", DeadParameter),
        ("batch_independence", MixesBatch),
        ("padding_invariance", IgnoresMask),
        ("no_future_leak", IgnoresMask),
        ("unilm_source_blind", IgnoresMask),
    ],
)
def test_checker_catches_broken_variant(checker: str, cls: type[_Broken]) -> None:
    with pytest.raises(AssertionError):
        CHECKERS[checker](broken(cls))


def test_equivariance_checker_catches_wrong_declaration() -> None:
    with pytest.raises(AssertionError):
        check_permutation_equivariance(broken(PositionBias), declared=True)
    with pytest.raises(AssertionError):
        check_permutation_equivariance(broken(IgnoresMask), declared=False)
