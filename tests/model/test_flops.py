"""Analytic FLOPs per token (`attnlab.model.flops`) against a count by `torch.utils.flop_counter` on a tiny model."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from attnlab.attention import ATTENTION
from attnlab.model.config import AttentionConfig, ModelConfig
from attnlab.model.flops import flops_per_token
from attnlab.model.transformer import Transformer

B, T = 2, 7


def tiny(kind: str, **model: object) -> ModelConfig:
    fields = {"vocab_size": 50, "max_len": 16, "d_model": 16, "n_heads": 4, "n_layers": 2, "d_ff": 24,
              "dropout": 0.0, "attention_dropout": 0.0, **model}
    return ModelConfig(attention=AttentionConfig(kind=kind), **fields)  # type: ignore[arg-type]


def _baddbmm_inplace_flop(self_shape: tuple[int, ...], a_shape: tuple[int, ...], b_shape: tuple[int, ...],
                          *args: object, **kwargs: object) -> int:
    (b, m, k), (_, _, n) = a_shape, b_shape
    return 2 * b * m * k * n  # the counter's baddbmm formula, for the in-place op


def counted_flops_per_token(cfg: ModelConfig) -> float:
    """Forward FLOPs of one (B, T) batch as torch counts them, per token. SDPA runs its math backend (the CPU
    flash kernel is not in the counter's registry) and the in-place `baddbmm_` of the fused linear kernel is
    counted with the counter's own baddbmm formula (its registry lists only the out-of-place op)."""
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (B, T))
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.baddbmm_: _baddbmm_inplace_flop})
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(ids)
    return counter.get_total_flops() / (B * T)


@pytest.mark.parametrize("kind", ["dot", "linear"])
@pytest.mark.parametrize("model", [{}, {"key_size": 3, "value_size": 5}, {"embedding_size": 8}])
def test_analytic_flops_match_torch_count(kind: str, model: dict[str, int]) -> None:
    cfg = tiny(kind, **model)
    assert flops_per_token(cfg, T) == pytest.approx(counted_flops_per_token(cfg), rel=1e-12)


@pytest.mark.parametrize("kind", ["synthesizer_dense", "synthesizer_factorized_dense"])
def test_synthesizer_mlp_flops_match_torch_count(kind: str) -> None:
    cfg = tiny(kind)
    assert flops_per_token(cfg, T) == pytest.approx(counted_flops_per_token(cfg), rel=1e-12)


def test_dot_grows_with_length_linear_does_not() -> None:
    dot, linear = tiny("dot"), tiny("linear")
    assert flops_per_token(dot, 16) > flops_per_token(dot, 8)
    assert flops_per_token(linear, 16) == flops_per_token(linear, 8)


def test_sharing_does_not_reduce_compute() -> None:
    assert flops_per_token(tiny("dot", sharing="all"), T) == flops_per_token(tiny("dot"), T)


@pytest.mark.parametrize("kind", sorted(ATTENTION))
def test_every_variant_declares_positive_flops(kind: str) -> None:
    assert flops_per_token(tiny(kind), T) > 0
