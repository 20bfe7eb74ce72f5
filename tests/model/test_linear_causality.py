"""Causal linear attention is causal bit for bit (issue #12 item 2): in float32, making every later
key/value 1000× larger must leave every earlier output *exactly* equal (`torch.equal`), in the
chunked form at every chunk boundary and in the cumsum form. The old chunked form computed the
state of earlier chunks as `cumsum − s`, whose rounding let later tokens move earlier outputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.attention import AttentionDims
from attnlab.attention.linear import (
    LinearAttention,
    LinearOptions,
    linear_causal_chunked,
    linear_causal_cumsum,
    split_num_den,
    with_ones,
)
from attnlab.attention.masks import AttentionMask

B, H, T, DK, DV = 2, 3, 20, 8, 6
Causal = Callable[[Tensor, Tensor, Tensor], Tensor]


def features(seed: int) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    q, k = (F.elu(torch.randn(B, H, T, DK, generator=g)) + 1 for _ in range(2))  # positive, like φ
    return q, k, torch.randn(B, H, T, DV, generator=g)


def check_causal_bitwise(fn: Causal) -> None:
    q, k, v = features(0)
    ref = fn(q, k, v)
    for t in range(1, T):
        k2, v2 = k.clone(), v.clone()
        k2[:, :, t:] *= 1000.0
        v2[:, :, t:] *= 1000.0
        out = fn(q, k2, v2)
        assert torch.equal(out[:, :, :t], ref[:, :, :t]), (
            f"later keys/values change outputs before position {t}: max relative change "
            f"{((out[:, :, :t] - ref[:, :, :t]).abs() / ref[:, :, :t].abs()).max().item():.2e}")


@pytest.mark.parametrize("chunk", [1, 3, 4, 7, 64])
def test_chunked_causal_is_bitwise_causal(chunk: int) -> None:
    check_causal_bitwise(lambda q, k, v: linear_causal_chunked(q, k, v, 1e-6, chunk))


def test_cumsum_causal_is_bitwise_causal() -> None:
    check_causal_bitwise(lambda q, k, v: linear_causal_cumsum(q, k, v, 1e-6))


def _old_chunked(q: Tensor, k: Tensor, v: Tensor, chunk: int = 4) -> Tensor:
    """The pre-fix form (state of earlier chunks = cumsum − s), kept to show the checker catches it."""
    b, h, t, dk = q.shape
    v = with_ones(v)
    n = t // chunk
    qc, kc, vc = q.view(b, h, n, chunk, dk), k.view(b, h, n, chunk, dk), v.view(b, h, n, chunk, -1)
    tril = torch.ones(chunk, chunk).tril()
    s = kc.transpose(-2, -1) @ vc
    out = ((qc @ kc.transpose(-2, -1)) * tril) @ vc + qc @ (s.cumsum(dim=2) - s)
    return split_num_den(out, 1e-6).reshape(b, h, t, -1)


def test_checker_catches_the_cumsum_minus_s_leak() -> None:
    with pytest.raises(AssertionError, match="later keys/values change outputs"):
        check_causal_bitwise(_old_chunked)


@pytest.mark.parametrize("impl", ["chunked", "cumsum"])
def test_layer_is_bitwise_causal_in_float32(impl: str) -> None:
    """The whole layer: later *inputs* 1000× larger (so their q, k, v are too)."""
    torch.manual_seed(0)
    m = LinearAttention(AttentionDims(16, 4, 4, 4, 32), LinearOptions(causal_impl=impl, chunk_size=4)).eval()
    x = torch.randn(B, T, 16, generator=torch.Generator().manual_seed(1))
    ref = m(x, AttentionMask("causal"))
    for t in (3, 4, 9, 17):
        y = x.clone()
        y[:, t:] *= 1000.0
        assert torch.equal(m(y, AttentionMask("causal"))[:, :t], ref[:, :t]), t
