"""Training diagnostics the reports use to say what a run could test: how far a learned random-synthesizer matrix
and the talking-heads mixers moved from their initialisation, and the mean real length of the training sequences."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.attention import AttentionDims, build_attention
from attnlab.attention.masks import AttentionMask
from attnlab.attention.synthesizer import SynthesizerOptions
from attnlab.train.runner import train_run

from ..train.test_runner import tiny_cfg


def _dims() -> AttentionDims:
    return AttentionDims(d_model=16, n_heads=2, key_size=8, value_size=8, max_len=8)


def test_random_synthesizer_movement_is_measured_from_init() -> None:
    attn = build_attention("synthesizer_random", _dims())
    assert attn.extra_metrics()["random/rel_change"] == 0.0  # untouched: no movement
    with torch.no_grad():
        attn.random.add_(0.5 * attn.random)  # R = 1.5 R0 → ‖R − R0‖/‖R0‖ = 0.5
    assert attn.extra_metrics()["random/rel_change"] == pytest.approx(0.5, rel=1e-5)
    assert "random_init" not in attn.state_dict()  # the init copy is not saved in checkpoints


def test_random_movement_counts_only_the_block_training_reached() -> None:
    """R is max_len × max_len, but sequences of length 4 only train R[:, :4, :4]: the movement is measured there."""
    attn = build_attention("synthesizer_random", _dims())  # max_len 8
    attn.train()
    attn(torch.randn(2, 4, 16), AttentionMask("bidirectional"))
    with torch.no_grad():
        attn.random[:, :4, :4] *= 2.0  # the used block doubles: rel change 1.0 there, ~0.5 over the whole matrix
    metrics = attn.extra_metrics()
    assert metrics["random/trained_len"] == 4.0
    assert metrics["random/rel_change"] == pytest.approx(1.0, rel=1e-5)


def test_fixed_random_and_mixtures_report_their_state() -> None:
    fixed = build_attention("synthesizer_random", _dims(), SynthesizerOptions(trainable=False))
    assert fixed.extra_metrics()["random/rel_change"] == 0.0
    mixed = build_attention("synthesizer_random_dot", _dims())
    metrics = mixed.extra_metrics()
    assert metrics["mix/random"] == pytest.approx(0.5) and metrics["mix/dot"] == pytest.approx(0.5)
    assert "random/rel_change" in metrics
    assert "random/rel_change" not in build_attention("synthesizer_dense", _dims()).extra_metrics()


def test_talking_heads_mixer_change_from_identity() -> None:
    attn = build_attention("talking_heads", _dims())
    assert attn.extra_metrics() == {"mix_change/pre": 0.0, "mix_change/post": 0.0}
    with torch.no_grad():
        attn.pre_mix[0, 1] = 1.0  # ‖P − I‖ = 1, ‖I‖ = √2
    assert attn.extra_metrics()["mix_change/pre"] == pytest.approx(2**-0.5)


def test_record_has_training_length_and_diagnostics(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(data_root, "glue/sst2", steps=4, **{"model.attention.kind": "synthesizer_random"})
    record = train_run(cfg, out_dir=tmp_path, progress=False)
    per_example = record.metrics["data/train_tokens_per_example"]
    assert 2 < per_example <= 32  # real tokens of SST-2 sentences, truncated at task.max_length
    assert record.metrics["data/len_over_key_size"] == pytest.approx(per_example / 16)  # key size 32 / 2 heads
    assert record.cost.train_tokens == pytest.approx(per_example * 4 * 16, rel=0.3)  # 4 steps of 16 (last may be short)
    assert 0 < record.metrics["attn/attn0/random/rel_change"] < 1  # 4 steps moved R, a little
