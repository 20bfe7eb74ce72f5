"""Causal decoding: time per generated token, and decoding-state memory, vs the length L already
decoded — dot attention with its KV cache (O(L) per token) vs linear attention's recurrent state
(S, z), O(1) per token (Katharopoulos et al. 2020, §3.4 "Transformers are RNNs").

Two levels, both timed interleaved (common.py), from a cache prefilled with L random tokens and
reset before each round, so every round decodes the same `steps` tokens after the same L:
- model: `CausalLM.prefill` then `CausalLM.step` (embeddings, every layer, LM head) — what
  generation runs, and what the targets are judged on;
- attention: one layer's own `prefill`/`step`, plus a bench-only dot reference that writes into a
  KV buffer preallocated for the whole run (a floor for what the model's KV cache can cost).

Every decoder takes one untimed step after the prefill and each round restarts from that state
(L tokens seen): the first step after a prefill turns the prompt's exact-size K/V into a growable
buffer (one O(L) copy, then amortised doubling), which steady-state generation does not pay per
token. Restarting from the same KV state is safe here: a step writes past that state's length only.

Decoding is timed with 1 intra-op thread by default: a step is dozens of µs-sized ops, where a
2-thread OpenMP region costs more in synchronisation than it saves, and on a shared machine stalls
for a whole scheduler slice whenever another process holds the second core (seen here: 40-90 ms
per token instead of ~1 ms). One thread per decoding stream is also how CPU serving runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.attention.base import merge_heads
from attnlab.attention.dot import DotAttention
from attnlab.attention.masks import AttentionMask
from attnlab.bench.common import OtherLoad, median, paired_ratio, time_rounds
from attnlab.bench.config import AttentionBenchConfig, LayerShape, Log
from attnlab.bench.layers import build_layer

DECODE_LAYERS = 2


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor reachable in a (nested) decoding state."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(o) for o in obj.values())
    if hasattr(obj, "__dict__"):
        return sum(tensor_bytes(o) for o in vars(obj).values())
    return 0


class PreallocatedKVDecoder:
    """Bench-only reference for dot decoding: K/V live in a buffer sized for the whole run; a step
    writes the new key/value in place and attends over the filled prefix (no copy of the cache)."""

    def __init__(self, attn: DotAttention, prefix: Tensor, capacity: int) -> None:
        self.attn = attn
        _, k, v = attn.proj.qkv(prefix)  # (B, H, L, d) each
        b, h, length, d = k.shape
        self.k = k.new_empty(b, h, capacity, d)  # (B, H, capacity, dk)
        self.v = v.new_empty(b, h, capacity, v.shape[-1])  # (B, H, capacity, dv)
        self.k[:, :, :length], self.v[:, :, :length] = k, v
        self.start = self.pos = length

    def reset(self) -> None:
        self.pos = self.start

    def step(self, x_t: Tensor) -> Tensor:
        q, k, v = self.attn.proj.qkv(x_t)  # (B, H, 1, d)
        self.k[:, :, self.pos], self.v[:, :, self.pos] = k[:, :, 0], v[:, :, 0]
        self.pos += 1
        out = F.scaled_dot_product_attention(q, self.k[:, :, : self.pos], self.v[:, :, : self.pos])  # (B, H, 1, dv)
        return self.attn.proj.output(merge_heads(out))  # type: ignore[no-any-return]

    def state_bytes(self) -> int:
        return 2 * tensor_bytes(self.k[:, :, : self.pos])


Timed = tuple[dict[str, Callable[[], None]], dict[str, int]]  # calls to time, state bytes of each


def attention_level_calls(length: int, cfg: AttentionBenchConfig, device: torch.device) -> Timed:
    shape = LayerShape(cfg.batch, cfg.d_model, cfg.n_heads)
    capacity = length + cfg.decode_steps
    prefix = torch.randn(cfg.batch, length, cfg.d_model, device=device)  # (B, L, D)
    tokens = torch.randn(cfg.decode_steps, cfg.batch, 1, cfg.d_model, device=device)  # (N, B, 1, D)
    causal = AttentionMask("causal")
    fns: dict[str, Callable[[], None]] = {}
    states: dict[str, Any] = {}
    for name in ("dot", "linear"):
        layer = build_layer(name, shape, capacity, device).eval()
        _, state = layer.prefill(prefix, causal)  # type: ignore[operator]
        _, states[name] = layer.step(tokens[0], state, "causal")  # type: ignore[operator]  # see _settle

        def run(layer: nn.Module = layer, state0: Any = states[name]) -> None:
            state = state0
            for x_t in tokens:
                _, state = layer.step(x_t, state, "causal")  # type: ignore[operator]

        fns[f"attn:{name}.step"] = run
    ref = PreallocatedKVDecoder(cast(DotAttention, build_layer("dot", shape, capacity, device).eval()), prefix, capacity)

    def run_ref() -> None:
        ref.reset()
        for x_t in tokens:
            ref.step(x_t)

    fns["attn:dot_prealloc_ref"] = run_ref
    return fns, {"attn:dot.step": tensor_bytes(states["dot"]), "attn:linear.step": tensor_bytes(states["linear"]),
                 "attn:dot_prealloc_ref": ref.state_bytes()}


def model_level_calls(length: int, cfg: AttentionBenchConfig, device: torch.device) -> Timed:
    from attnlab.config import AttentionConfig, ModelConfig
    from attnlab.model import CausalLM

    fns: dict[str, Callable[[], None]] = {}
    state_bytes: dict[str, int] = {}
    ids = torch.randint(5, 8000, (cfg.batch, length + cfg.decode_steps), device=device)  # (B, L + N)
    for kind in ("dot", "linear"):
        torch.manual_seed(cfg.seed)
        mcfg = ModelConfig(vocab_size=8000, max_len=length + cfg.decode_steps, d_model=cfg.d_model,
                           n_heads=cfg.n_heads, n_layers=DECODE_LAYERS, d_ff=4 * cfg.d_model, dropout=0.0,
                           attention_dropout=0.0, mask="causal", norm_position="pre",
                           attention=AttentionConfig(kind=kind))
        model = CausalLM(mcfg).to(device).eval()
        _, cache0 = model.prefill(ids[:, :length - 1])
        _, cache0 = model.step(ids[:, length - 1 : length], cache0)  # see the module docstring: settle
        state_bytes[f"model:{kind}"] = tensor_bytes(cache0.states)

        def run(model: CausalLM = model, cache0: Any = cache0) -> None:
            cache = cache0
            for i in range(length, length + cfg.decode_steps):
                _, cache = model.step(ids[:, i : i + 1], cache)

        fns[f"model:{kind}"] = run
    return fns, state_bytes


def model_decoding_available() -> bool:
    from attnlab.model import CausalLM

    return all(hasattr(CausalLM, m) for m in ("prefill", "step"))


def run_decode_bench(cfg: AttentionBenchConfig, device: torch.device, log: Log) -> dict[str, Any]:
    """Every (L, decoder) pair is built first and all are timed in the same rounds: a busy spell of
    the machine then hits every L alike instead of one L's block (per-token ops are tiny and
    2-thread OpenMP regions stall badly while other processes hold the cores)."""
    lengths = sorted(cfg.decode_lengths or cfg.lengths)
    with_model = model_decoding_available()
    fns: dict[str, Callable[[], None]] = {}
    state_bytes: dict[str, int] = {}
    with torch.no_grad():
        for length in lengths:
            torch.manual_seed(cfg.seed)
            calls, sizes = attention_level_calls(length, cfg, device)
            if with_model:
                model_calls, model_sizes = model_level_calls(length, cfg, device)
                calls, sizes = {**calls, **model_calls}, {**sizes, **model_sizes}
            fns.update({f"{length}|{name}": fn for name, fn in calls.items()})
            state_bytes.update({f"{length}|{name}": b for name, b in sizes.items()})
        log(f"[decode] {len(fns)} decoders ({len(lengths)} lengths), {cfg.decode_rounds} interleaved rounds of "
            f"{cfg.decode_steps} tokens each, {cfg.decode_threads} intra-op thread(s)")
        threads, other = torch.get_num_threads(), OtherLoad()
        torch.set_num_threads(cfg.decode_threads)
        other.start()
        try:
            times = time_rounds(fns, cfg.decode_rounds, device, warmup=1)
        finally:
            other_cores = other.stop()
            torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    for length in lengths:
        mine = {key.split("|", 1)[1]: ts for key, ts in times.items() if key.startswith(f"{length}|")}
        row: dict[str, Any] = {"L": length, "steps": cfg.decode_steps}
        for name, ts in mine.items():
            row[f"{name} ms/token"] = 1000 * median(ts) / cfg.decode_steps
            row[f"{name} best ms/token"] = 1000 * min(ts) / cfg.decode_steps
            row[f"{name} state MiB"] = state_bytes[f"{length}|{name}"] / 2**20
        row["attn dot/linear"] = paired_ratio(mine["attn:dot.step"], mine["attn:linear.step"])
        row["attn dot/dot_prealloc_ref"] = paired_ratio(mine["attn:dot.step"], mine["attn:dot_prealloc_ref"])
        if with_model:
            row["model dot/linear"] = paired_ratio(mine["model:dot"], mine["model:linear"])
        rows.append(row)
        log(f"[decode] L={length:<5d} " + "  ".join(f"{n} {row[f'{n} ms/token']:.3f} ms/tok" for n in mine))
    return {
        "levels": ["model", "attention"] if with_model else ["attention"],
        "model": {"n_layers": DECODE_LAYERS, "d_ff": 4 * cfg.d_model, "vocab_size": 8000, "norm_position": "pre"}
        if with_model else "not run: attnlab.model.CausalLM has no prefill/step",
        "batch": cfg.batch,
        "rounds": cfg.decode_rounds,
        "threads": cfg.decode_threads,
        "other_cpu_cores": other_cores,
        "rows": rows,
    }
