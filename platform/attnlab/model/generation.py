"""Decoding for causal LMs (GPT-2 style) and UniLM seq2seq models: greedy, top-k / top-p
sampling, beam search. Incremental by default (KV cache for dot attention, the recurrent state
for linear attention, input history for the rest); `use_cache=False` recomputes the whole
sequence each step — the reference the incremental path is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from attnlab.model.decoding_controls import DecodingControls, apply_controls
from attnlab.model.heads import CausalLM
from attnlab.model.transformer import DecodeCache


@dataclass(frozen=True)
class GenerationConfig:
    """Library defaults switch every control off; `attnlab generate` and the seq2seq evaluation
    turn them on (see `attnlab generate --help`)."""

    max_new_tokens: int = 32
    strategy: str = "greedy"  # greedy | sample | beam
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    num_beams: int = 4
    length_penalty: float = 1.0  # beam: final score = sum log p / length ** length_penalty
    repetition_penalty: float = 1.0  # CTRL: divide positive / multiply negative logits of generated tokens
    no_repeat_ngram_size: int = 0  # no n-gram of this size occurs twice in the continuation
    min_new_tokens: int = 0  # EOS forbidden before this many tokens
    eos_id: int | None = None  # a row stops at EOS; all rows done → generation stops
    pad_id: int | None = None  # what finished rows hold after their EOS (None → eos_id)
    seed: int | None = None

    def controls(self) -> DecodingControls:
        return DecodingControls(self.repetition_penalty, self.no_repeat_ngram_size, self.min_new_tokens, self.eos_id)

    @property
    def fill_id(self) -> int | None:
        return self.pad_id if self.pad_id is not None else self.eos_id


class _Stepper:
    """Next-token logits for the growing sequence, with or without the incremental cache."""

    def __init__(self, model: CausalLM, prompt: Tensor, token_type_ids: Tensor | None, condition: Tensor | None,
                 use_cache: bool) -> None:
        self.model, self.use_cache, self.condition = model, use_cache, condition
        self.prefix = model.transformer.cfg.mask == "prefix"
        self.seq = prompt
        self.types = token_type_ids if token_type_ids is not None else torch.zeros_like(prompt)
        self.cache: DecodeCache | None = None

    def first(self) -> Tensor:
        if self.use_cache:
            logits, self.cache = self.model.prefill(self.seq, self.types if self.prefix else None, self.condition)
            return logits
        return self._full()

    def _full(self) -> Tensor:
        return self.model(self.seq, None, self.types, self.condition)[:, -1]

    def advance(self, tokens: Tensor, reorder: Tensor | None = None) -> Tensor:
        """Append tokens (B,) (after reordering rows by `reorder` for beam search) → next logits."""
        if reorder is not None:
            self.seq, self.types = self.seq[reorder], self.types[reorder]
            if self.cache is not None:
                self.cache = self.cache.select(reorder)
            if self.condition is not None and not self.use_cache:
                self.condition = self.condition[reorder]
        self.seq = torch.cat([self.seq, tokens[:, None]], dim=1)
        new_type = torch.full_like(tokens[:, None], 1 if self.prefix else 0)
        self.types = torch.cat([self.types, new_type], dim=1)
        if self.use_cache:
            assert self.cache is not None
            logits, self.cache = self.model.step(tokens[:, None], self.cache)
            return logits
        return self._full()


def filter_logits(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """Top-k then nucleus (top-p) filtering: removed entries become -inf."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keep the smallest prefix with mass >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def generate(model: CausalLM, prompt: Tensor, cfg: GenerationConfig = GenerationConfig(),
             token_type_ids: Tensor | None = None, condition: Tensor | None = None,
             use_cache: bool = True) -> Tensor:
    """prompt (B, T) → generated continuation (B, ≤ max_new_tokens); beam search returns the best beam."""
    was_training = model.training
    model.eval()
    try:
        if cfg.strategy == "beam":
            return _beam(model, prompt, cfg, token_type_ids, condition, use_cache)
        if cfg.strategy not in ("greedy", "sample"):
            raise ValueError(f"unknown strategy {cfg.strategy!r}; valid: greedy, sample, beam")
        controls = cfg.controls()
        controls.validate()
        gen = torch.Generator(device=prompt.device)
        if cfg.seed is not None:
            gen.manual_seed(cfg.seed)
        stepper = _Stepper(model, prompt, token_type_ids, condition, use_cache)
        logits = stepper.first()
        out = torch.zeros(prompt.shape[0], 0, dtype=torch.long, device=prompt.device)  # (B, i)
        done = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
        for i in range(cfg.max_new_tokens):
            logits = apply_controls(logits, out, controls)
            if cfg.strategy == "greedy":
                tokens = logits.argmax(-1)
            else:
                probs = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
                tokens = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
            if cfg.eos_id is not None:
                assert cfg.fill_id is not None
                tokens = tokens.masked_fill(done, cfg.fill_id)  # a finished row only pads
                done |= tokens == cfg.eos_id
            out = torch.cat([out, tokens[:, None]], dim=1)
            if bool(done.all()) or i == cfg.max_new_tokens - 1:
                break
            logits = stepper.advance(tokens)
        return out
    finally:
        model.train(was_training)


def _beam(model: CausalLM, prompt: Tensor, cfg: GenerationConfig, token_type_ids: Tensor | None,
          condition: Tensor | None, use_cache: bool) -> Tensor:
    tokens, scores, lengths = beam_hypotheses(model, prompt, cfg, token_type_ids, condition, use_cache)
    best = length_normalised(scores, lengths, cfg.length_penalty).argmax(-1)  # (B,)
    return tokens[torch.arange(prompt.shape[0], device=prompt.device), best]


def length_normalised(scores: Tensor, lengths: Tensor, length_penalty: float) -> Tensor:
    """Beam ranking (Wu et al. 2016 in its common simplified form): sum log p / length ** α.
    α = 0 ranks by total log-probability; α > 0 favours longer hypotheses."""
    return scores / lengths.float().pow(length_penalty)


@torch.no_grad()
def beam_hypotheses(model: CausalLM, prompt: Tensor, cfg: GenerationConfig, token_type_ids: Tensor | None = None,
                    condition: Tensor | None = None, use_cache: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Beam search, `num_beams` hypotheses per prompt → tokens (B, k, L), summed log-probabilities of
    the controlled distributions (B, k) and lengths up to and including the first EOS (B, k).
    A finished hypothesis keeps its score (it continues with EOS at no cost, padded in the output)."""
    b, k = prompt.shape[0], cfg.num_beams
    controls = cfg.controls()
    controls.validate()
    rows = torch.arange(b, device=prompt.device).repeat_interleave(k)
    stepper = _Stepper(model, prompt[rows], None if token_type_ids is None else token_type_ids[rows],
                       None if condition is None else condition[rows], use_cache)
    tokens_so_far = torch.zeros(b * k, 0, dtype=torch.long, device=prompt.device)  # (B·k, i)
    logp = apply_controls(stepper.first(), tokens_so_far, controls).log_softmax(-1)  # (B·k, V)
    scores = torch.full((b, k), float("-inf"), device=prompt.device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    finished = torch.zeros(b * k, dtype=torch.bool, device=prompt.device)
    v = logp.shape[-1]
    for i in range(cfg.max_new_tokens):
        if cfg.eos_id is not None:  # a finished beam may only continue with EOS at no cost
            eos_row = torch.full_like(logp, float("-inf"))
            eos_row[:, cfg.eos_id] = 0.0
            logp = torch.where(finished[:, None], eos_row, logp)
        total = (scores.view(-1, 1) + logp).view(b, k * v)
        scores, flat = total.topk(k, dim=-1)  # (B, k)
        beam, token = flat // v, flat % v
        src = (torch.arange(b, device=prompt.device)[:, None] * k + beam).view(-1)
        tokens = token.view(-1)
        tokens_so_far = torch.cat([tokens_so_far[src], tokens[:, None]], dim=1)
        finished = finished[src] | (tokens == cfg.eos_id if cfg.eos_id is not None else torch.zeros_like(finished))
        if bool(finished.all()) or i == cfg.max_new_tokens - 1:
            break
        logits = stepper.advance(tokens, reorder=src)
        logp = apply_controls(logits, tokens_so_far, controls).log_softmax(-1)
    width = tokens_so_far.shape[1]
    if cfg.eos_id is not None:
        before_eos = (tokens_so_far == cfg.eos_id).long().cumsum(1).eq(0)  # (B·k, L): True before the first EOS
        lengths = (before_eos.sum(1) + 1).clamp(max=width)
        after = ~before_eos & (torch.arange(width, device=prompt.device) > before_eos.sum(1, keepdim=True))
        assert cfg.fill_id is not None
        tokens_so_far = tokens_so_far.masked_fill(after, cfg.fill_id)
    else:
        lengths = torch.full((b * k,), width, device=prompt.device)
    return tokens_so_far.view(b, k, width), scores, lengths.view(b, k)
