"""Smoke run: build every registered attention variant and train a few steps on a synthetic task.

The task — "does token 1 occur anywhere?" — needs information to flow across positions, so a
variant whose attention is broken cannot learn it. Used by `attnlab smoke` and the README.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attnlab.attention import ATTENTION
from attnlab.config import AttentionConfig, ModelConfig, from_dict
from attnlab.model import SequenceClassifier


@dataclass(frozen=True)
class SmokeResult:
    variant: str
    params: int
    first_loss: float
    last_loss: float
    accuracy: float
    ms_per_step: float


def synthetic_batch(n: int, seq_len: int, vocab: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(2, vocab, (n, seq_len), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    where = torch.randint(1, seq_len, (n,), generator=generator)
    ids[labels == 1, where[labels == 1]] = 1
    return ids, labels


def smoke_variant(kind: str, steps: int = 30, seq_len: int = 16, seed: int = 0) -> SmokeResult:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=64, max_len=seq_len, d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0,
                      attention_dropout=0.0, attention=from_dict(AttentionConfig, {"kind": kind}))
    model = SequenceClassifier(cfg, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        ids, labels = synthetic_batch(32, seq_len, cfg.vocab_size, g)
        loss = F.cross_entropy(model(ids), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    elapsed = time.perf_counter() - start
    model.eval()
    ids, labels = synthetic_batch(256, seq_len, cfg.vocab_size, g)
    with torch.no_grad():
        acc = (model(ids).argmax(-1) == labels).float().mean().item()
    params = sum(p.numel() for p in model.parameters())
    return SmokeResult(kind, params, losses[0], sum(losses[-5:]) / 5, acc, 1000 * elapsed / steps)


def run_smoke(steps: int = 30, variants: list[str] | None = None) -> list[SmokeResult]:
    return [smoke_variant(k, steps) for k in (variants or sorted(ATTENTION))]


def format_table(rows: list[SmokeResult]) -> str:
    header = f"{'variant':<32}{'params':>9}{'loss@0':>9}{'loss@end':>10}{'acc':>7}{'ms/step':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.variant:<32}{r.params:>9,}{r.first_loss:>9.3f}{r.last_loss:>10.3f}"
                     f"{r.accuracy:>7.2f}{r.ms_per_step:>9.1f}")
    return "\n".join(lines)
