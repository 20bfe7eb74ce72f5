"""Decoding controls (repetition penalty, no repeated n-gram, minimum length, EOS padding, beam length
penalty) against their definitions, and cached == recomputed decoding with every control on."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from attnlab.config import AttentionConfig, ModelConfig, from_dict
from attnlab.model import CausalLM
from attnlab.model.decoding_controls import (
    DecodingControls,
    apply_controls,
    apply_repetition_penalty,
    banned_ngram_tokens,
)
from attnlab.model.generation import GenerationConfig, beam_hypotheses, generate, length_normalised

V = 24  # a small vocabulary: a sharpened random model repeats itself quickly


def lm(kind: str = "dot", mask: str = "causal", seed: int = 0) -> CausalLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=V, max_len=48, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0,
                      attention_dropout=0.0, mask=mask, norm_position="pre",
                      attention=from_dict(AttentionConfig, {"kind": kind}))
    model = CausalLM(cfg).double().eval()
    for p in model.parameters():
        p.data.mul_(6.0) if p.dim() == 2 else None
    return model


def ngrams(row: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]


def reference_logits(logits: torch.Tensor, history: list[int], penalty: float, n: int, step: int, min_new: int,
                     eos: int | None) -> torch.Tensor:
    """The controls written out token by token, as their definitions read."""
    out = logits.clone()
    for tok in set(history):
        out[tok] = out[tok] / penalty if out[tok] > 0 else out[tok] * penalty
    if n > 0:
        for gram in ngrams(history, n):
            if len(history) >= n - 1 and list(gram[:-1]) == history[len(history) - n + 1 :]:
                out[gram[-1]] = float("-inf")
    if eos is not None and step < min_new:
        out[eos] = float("-inf")
    return out


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert_close(out, torch.tensor([[1.0, -2.0, 0.5, 3.0]]))  # seen twice → still penalised once
    assert_close(apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 1.0), logits)


def test_banned_ngram_tokens_by_hand() -> None:
    history = torch.tensor([[1, 2, 3, 1, 2]])
    assert banned_ngram_tokens(history, 3, 6)[0].nonzero().flatten().tolist() == [3]  # "1 2" was followed by 3
    assert banned_ngram_tokens(history, 2, 6)[0].nonzero().flatten().tolist() == [3]  # "2" was followed by 3
    assert banned_ngram_tokens(history, 1, 6)[0].nonzero().flatten().tolist() == [1, 2, 3]
    assert not banned_ngram_tokens(history, 4, 6).any()  # "3 1 2" never continued
    assert not banned_ngram_tokens(history[:, :0], 2, 6).any()


def test_min_new_tokens_blocks_eos_then_releases_it() -> None:
    logits = torch.zeros(1, 5)
    controls = DecodingControls(min_new_tokens=2, eos_id=4)
    assert torch.isneginf(apply_controls(logits, torch.zeros(1, 1, dtype=torch.long), controls)[0, 4])
    assert apply_controls(logits, torch.zeros(1, 2, dtype=torch.long), controls)[0, 4] == 0.0


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeated_ngram_ever_appears(strategy: str, n: int) -> None:
    model = lm()
    prompt = torch.randint(0, V, (4, 3), generator=torch.Generator().manual_seed(1))
    cfg = GenerationConfig(max_new_tokens=20 if n == 1 else 30, strategy=strategy, top_k=8, seed=0, num_beams=3)
    plain = generate(model, prompt, cfg).tolist()
    controlled = generate(model, prompt, GenerationConfig(**{**cfg.__dict__, "no_repeat_ngram_size": n})).tolist()
    assert any(len(set(ngrams(r, n))) < len(ngrams(r, n)) for r in plain)  # the check can fail
    for row in controlled:
        assert len(set(ngrams(row, n))) == len(ngrams(row, n)), row


@pytest.mark.parametrize("mask", ["causal", "prefix"])
@torch.no_grad()
def test_greedy_with_controls_equals_the_definition_step_by_step(mask: str) -> None:
    model = lm(mask=mask)
    prompt = torch.randint(0, V, (3, 4), generator=torch.Generator().manual_seed(2))
    types = torch.zeros_like(prompt)
    penalty, n, min_new, eos = 1.7, 2, 3, 5
    cfg = GenerationConfig(max_new_tokens=12, repetition_penalty=penalty, no_repeat_ngram_size=n,
                           min_new_tokens=min_new, eos_id=eos, pad_id=0)
    out = generate(model, prompt, cfg, token_type_ids=types)
    for b in range(3):
        seq, hist, t = prompt[b : b + 1], [], types[b : b + 1]
        for step in range(12):
            logits = model(seq, None, t)[0, -1]
            tok = int(reference_logits(logits, hist, penalty, n, step, min_new, eos).argmax())
            hist.append(tok)
            if tok == eos:
                break
            seq = torch.cat([seq, torch.tensor([[tok]])], 1)
            t = torch.cat([t, torch.ones(1, 1, dtype=torch.long) if mask == "prefix" else torch.zeros(1, 1).long()], 1)
        row = out[b].tolist()
        assert row[: len(hist)] == hist and all(x == 0 for x in row[len(hist) :])  # finished rows hold pad_id
        assert eos not in hist[:min_new]


@torch.no_grad()
def test_beam_scores_are_summed_controlled_log_probs_and_ranked_by_length_penalty() -> None:
    model = lm(seed=3)
    prompt = torch.randint(0, V, (2, 4), generator=torch.Generator().manual_seed(4))
    base = dict(max_new_tokens=8, strategy="beam", num_beams=4, repetition_penalty=1.5, no_repeat_ngram_size=2,
                min_new_tokens=2, eos_id=11)
    tokens, scores, lengths = beam_hypotheses(model, prompt, GenerationConfig(**base))  # type: ignore[arg-type]
    for b in range(2):
        for h in range(4):
            row, total, seq = tokens[b, h].tolist()[: int(lengths[b, h])], 0.0, prompt[b : b + 1]
            for step, tok in enumerate(row):
                logits = reference_logits(model(seq)[0, -1], row[:step], 1.5, 2, step, 2, 11)
                total += float(logits.log_softmax(-1)[tok])
                seq = torch.cat([seq, torch.tensor([[tok]])], 1)
            assert_close(scores[b, h].item(), total)
    assert len(set(lengths.flatten().tolist())) > 1  # hypotheses of several lengths: the ranking matters
    picks = set()
    for alpha in (0.0, 1.0, 3.0):
        best = length_normalised(scores, lengths, alpha).argmax(-1)
        picks.add(tuple(best.tolist()))
        out = generate(model, prompt, GenerationConfig(**base, length_penalty=alpha))  # type: ignore[arg-type]
        assert torch.equal(out, tokens[torch.arange(2), best])
    assert len(picks) > 1  # the length penalty changed the winner


def test_length_penalty_ranking_by_hand() -> None:
    scores, lengths = torch.tensor([[-4.0, -6.0]]), torch.tensor([[2, 4]])
    assert length_normalised(scores, lengths, 0.0).argmax().item() == 0  # -4 > -6
    assert length_normalised(scores, lengths, 1.0).argmax().item() == 1  # -2 < -1.5
    assert_close(length_normalised(scores, lengths, 2.0), torch.tensor([[-1.0, -0.375]]))


@pytest.mark.parametrize("kind", ["dot", "linear", "talking_heads", "synthesizer_random_dot"])
@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
@pytest.mark.parametrize("mask", ["causal", "prefix"])
def test_cached_generation_with_controls_equals_recompute(kind: str, strategy: str, mask: str) -> None:
    model = lm(kind, mask)
    prompt = torch.randint(0, V, (2, 5), generator=torch.Generator().manual_seed(2))
    cfg = GenerationConfig(max_new_tokens=10, strategy=strategy, top_k=10, top_p=0.9, seed=3, num_beams=3,
                           repetition_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=3, eos_id=5,
                           length_penalty=0.8)
    assert torch.equal(generate(model, prompt, cfg, use_cache=True), generate(model, prompt, cfg, use_cache=False))


def test_invalid_controls_are_rejected() -> None:
    with pytest.raises(ValueError, match="repetition_penalty"):
        generate(lm(), torch.zeros(1, 2, dtype=torch.long), GenerationConfig(repetition_penalty=0.0))
