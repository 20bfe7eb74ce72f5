"""PASS/MISS of the attention and decoding targets (issue #12), judged on the measured ratios; a
missed timing target gets a short torch.profiler run whose top ops are written next to it (the
measured reason)."""

from __future__ import annotations

import math
from typing import Any

import torch

from attnlab.attention import ATTENTION, AttentionDims
from attnlab.attention.masks import AttentionMask
from attnlab.bench.common import contention_note, format_ops, target, top_ops
from attnlab.bench.config import AttentionBenchConfig, Log
from attnlab.bench.decode import attention_level_calls, model_level_calls
from attnlab.bench.layers import build_layer, make_step
from attnlab.bench.memory import memory_slope

TARGET_T = 4096  # linear vs dot, decoding
COMPARE_T = 1024  # the other variants vs dot
FLAT_MAX_GROWTH = 1.5  # "flat": per-token time at the longest L ≤ 1.5× that at the shortest
LINEAR_SPEEDUP, DECODE_ATTN_SPEEDUP, DECODE_MODEL_SPEEDUP = 6.0, 20.0, 3.0
MAX_SLOPE, PARITY_ATOL = 1.15, 1e-12
VS_DOT = (("synthesizer_random_dot", 1.5), ("synthesizer_dense_dot", 2.5), ("synthesizer_random", 1.0),
          ("talking_heads", 2.5))  # (variant, most time relative to dot at COMPARE_T)


def _at(available: list[int], wanted: int) -> tuple[int | None, str]:
    if not available:
        return None, ""
    if wanted in available:
        return wanted, ""
    t = min(available, key=lambda a: abs(math.log(a / wanted)))
    return t, f" (T={wanted} not measured: judged at T={t})"


def _profile(names: list[str], t: int, cfg: AttentionBenchConfig, device: torch.device) -> dict[str, Any]:
    out = {}
    for name in names:
        torch.manual_seed(cfg.seed)
        out[name] = top_ops(make_step(build_layer(name, cfg.shape, t, device), cfg.shape, t, device))
    return out


def _with_profile(tg: dict[str, Any], names: list[str], t: int, cfg: AttentionBenchConfig,
                  device: torch.device) -> dict[str, Any]:
    tg["judged_T"] = t
    if tg["status"] == "MISS":
        tg["profile"] = _profile(names, t, cfg, device)
        tg["detail"] += "; profile at T=" + str(t) + ": " + "; ".join(
            f"{n}: {format_ops(ops[:3])}" for n, ops in tg["profile"].items())
    return tg


def _dot_vs_sdpa(ratios: dict[str, dict[str, float]], cfg: AttentionBenchConfig, device: torch.device) -> dict[str, Any]:
    goal = "dot ≤ 1.1× raw SDPA (same projections) fwd+bwd time, at every T"
    per_t = {int(t): r["dot/sdpa"] for t, r in ratios.items() if "dot/sdpa" in r}
    if not per_t:
        return target("dot_vs_sdpa", goal, None, None, "dot or sdpa not measured")
    worst = max(per_t, key=lambda t: per_t[t])
    geo = math.exp(sum(math.log(v) for v in per_t.values()) / len(per_t))
    tg = target("dot_vs_sdpa", goal, per_t[worst], per_t[worst] <= 1.1, f"worst T={worst}; geometric mean {geo:.3f}")
    return _with_profile(tg, ["dot", "sdpa"], worst, cfg, device)


def _vs_dot(ratios: dict[str, dict[str, float]], cfg: AttentionBenchConfig, device: torch.device) -> list[dict[str, Any]]:
    out = []
    t_lin, note = _at([int(t) for t, r in ratios.items() if "linear/dot" in r], TARGET_T)
    goal = f"linear ≥ {LINEAR_SPEEDUP:g}× faster than dot (fwd+bwd) at T={TARGET_T}"
    if t_lin is None:
        out.append(target("linear_vs_dot", goal, None, None, "linear or dot not measured"))
    else:
        speedup = 1 / ratios[str(t_lin)]["linear/dot"]
        out.append(_with_profile(target("linear_vs_dot", goal, speedup, speedup >= LINEAR_SPEEDUP,
                                        f"dot/linear time at T={t_lin}{note}"), ["linear", "dot"], t_lin, cfg, device))
    for variant, most in VS_DOT:
        key = f"{variant}/dot"
        goal = f"{variant} ≤ {most:g}× dot's fwd+bwd time at T={COMPARE_T}"
        t, note = _at([int(t) for t, r in ratios.items() if key in r], COMPARE_T)
        if t is None:
            out.append(target(f"{variant}_vs_dot", goal, None, None, f"{variant} or dot not measured"))
            continue
        ratio = ratios[str(t)][key]
        out.append(_with_profile(target(f"{variant}_vs_dot", goal, ratio, ratio <= most, f"time ratio at T={t}{note}"),
                                 [variant, "dot"], t, cfg, device))
    return out


def _memory(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for layer in ("linear", "talking_heads"):
        goal = f"{layer} peak memory grows linearly in T (log-log slope ≤ {MAX_SLOPE})"
        slope, ts = memory_slope(rows, layer)
        if math.isnan(slope):
            out.append(target(f"{layer}_memory", goal, None, None, f"peak memory of {layer} not measured at ≥ 2 T"))
            continue
        contrast, _ = memory_slope(rows, "explicit_softmax")
        out.append(target(f"{layer}_memory", goal, slope, slope <= MAX_SLOPE,
                          f"slope over T={ts[0]}..{ts[-1]}; explicit softmax {contrast:.2f} for contrast"))
    mem: dict[tuple[str, int], float] = {(r["layer"], r["T"]): r["peak_mib"] for r in rows if r.get("peak_mib")}
    ratios = {t: mem[("linear", t)] / mem[("dot", t)] for (name, t) in mem
              if name == "linear" and t >= COMPARE_T and ("dot", t) in mem}
    goal = f"linear peak memory ≤ dot's at every T ≥ {COMPARE_T}"
    if not ratios:
        out.append(target("linear_memory_vs_dot", goal, None, None, "not measured at any T ≥ 1024"))
    else:
        worst = max(ratios, key=lambda t: ratios[t])
        out.append(target("linear_memory_vs_dot", goal, ratios[worst], ratios[worst] <= 1.0,
                          f"worst linear/dot peak ratio at T={worst}; "
                          + ", ".join(f"T={t}: {r:.2f}" for t, r in sorted(ratios.items()))))
    return out


def _no_time_skips(rows: list[dict[str, Any]], lengths: tuple[int, ...]) -> dict[str, Any]:
    goal = f"every registered variant measured up to T={TARGET_T} (none skipped for time)"
    if TARGET_T not in lengths:
        return target("no_time_skips", goal, None, None, f"T={TARGET_T} not among the lengths")
    skipped = sorted({f"{r['layer']}@{r['T']}" for r in rows if r["T"] <= TARGET_T and r["layer"] in ATTENTION
                      and "too slow" in r["status"]})
    return target("no_time_skips", goal, float(len(skipped)), not skipped, ", ".join(skipped) or "none skipped")


def fast_path_parity(seed: int = 0) -> dict[str, float]:
    """max |fast − explicit| over outputs and every gradient, float64, random weights (mixers too),
    per variant that keeps an `explicit` reference form; the registry-wide test asserts the same."""
    dims = AttentionDims(d_model=16, n_heads=4, key_size=4, value_size=4, max_len=12)
    pad = torch.ones(2, 9, dtype=torch.bool)
    pad[0, 6:] = False
    masks = [AttentionMask("bidirectional"), AttentionMask("causal"), AttentionMask("bidirectional", pad)]
    out: dict[str, float] = {}
    for name, cls in sorted(ATTENTION.items()):
        if not hasattr(cls, "explicit"):
            continue
        torch.manual_seed(seed)
        layer = cls(dims).double()
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(0.3 * torch.randn_like(p))  # leave the identity init: mixers that really mix
        err = 0.0
        for mask in masks:
            x = torch.randn(2, 9, 16, dtype=torch.float64, requires_grad=True)
            fast, slow = layer(x, mask), layer.explicit(x, mask)  # type: ignore[operator]
            g = torch.randn_like(fast)
            wrt = [x, *layer.parameters()]
            grads = zip(torch.autograd.grad(fast, wrt, g), torch.autograd.grad(slow, wrt, g))
            err = max(err, (fast - slow).abs().max().item(), *[(a - b).abs().max().item() for a, b in grads])
        out[name] = err
    return out


def _parity() -> dict[str, Any]:
    goal = f"every fast path (talking-heads, synthesizers) equals its explicit form to {PARITY_ATOL:g} in float64"
    errors = fast_path_parity()
    if not errors:
        return target("fast_path_parity", goal, None, None, "no variant has an explicit form")
    worst = max(errors.values())
    return target("fast_path_parity", goal, worst, worst <= PARITY_ATOL,
                  "max |Δ| over outputs and gradients: " + ", ".join(f"{n} {e:.1e}" for n, e in errors.items()))


def _decode_targets(decode: dict[str, Any], cfg: AttentionBenchConfig, device: torch.device) -> list[dict[str, Any]]:
    rows = decode["rows"]
    has_model = "model" in decode["levels"]
    flat_key = "model:linear" if has_model else "attn:linear.step"
    flat_goal = f"linear decoding per-token time flat in L (longest/shortest ≤ {FLAT_MAX_GROWTH}×)"
    attn_goal = f"linear attention step ≥ {DECODE_ATTN_SPEEDUP:g}× faster per token than dot + KV cache at L={TARGET_T}"
    model_goal = f"whole model (CausalLM.step) ≥ {DECODE_MODEL_SPEEDUP:g}× faster per token with linear at L={TARGET_T}"
    if not rows:
        return [target(n, g, None, None, "not measured") for n, g in
                (("decode_flat", flat_goal), ("decode_attention_vs_dot", attn_goal), ("decode_model_vs_dot", model_goal))]
    first, last = rows[0], rows[-1]
    growth = last[f"{flat_key} ms/token"] / first[f"{flat_key} ms/token"]
    flat = target("decode_flat", flat_goal, growth, growth <= FLAT_MAX_GROWTH, f"{flat_key}, L={first['L']}→{last['L']}")
    t, note = _at([r["L"] for r in rows], TARGET_T)
    assert t is not None  # rows is not empty
    row = next(r for r in rows if r["L"] == t)
    attn = target("decode_attention_vs_dot", attn_goal, row["attn dot/linear"],
                  row["attn dot/linear"] >= DECODE_ATTN_SPEEDUP, f"one layer's step, L={t}{note}")
    model = (target("decode_model_vs_dot", model_goal, row["model dot/linear"],
                    row["model dot/linear"] >= DECODE_MODEL_SPEEDUP, f"L={t}{note}") if has_model
             else target("decode_model_vs_dot", model_goal, None, None, "CausalLM has no step"))
    missed = [tg for tg in (flat, attn, model) if tg["status"] == "MISS"]
    if missed:
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.decode_threads)  # profile under the timing's conditions
        try:
            with torch.no_grad():
                fns, _ = attention_level_calls(t, cfg, device)
                if has_model:
                    fns.update(model_level_calls(t, cfg, device)[0])
                wanted = {"attn:dot.step", "attn:linear.step", "model:dot", "model:linear"}
                profile = {name: top_ops(fn) for name, fn in fns.items() if name in wanted}
        finally:
            torch.set_num_threads(threads)
        for tg in missed:
            keys = [k for k in profile if k.startswith("model" if tg is model else "attn")] or list(profile)
            tg["profile"] = {k: profile[k] for k in keys}
            tg["detail"] += f"; profile ({cfg.decode_steps} tokens at L={t}): " + "; ".join(
                f"{k}: {format_ops(profile[k][:3])}" for k in keys)
    return [flat, attn, model]


def add_contention_notes(targets: list[dict[str, Any]], data: dict[str, Any]) -> None:
    """Caveat every timing target judged while other processes were busy (pure: reads `data` only)."""
    threads = data["machine"]["torch_threads"]
    for tg in targets:
        if tg.get("judged_T") is not None:
            load = next((r["other_cpu_cores"] for r in data["rows"]
                         if r["T"] == tg["judged_T"] and r.get("other_cpu_cores") is not None), None)
            tg["detail"] += contention_note(load, threads)
        elif tg["name"].startswith("decode_"):
            tg["detail"] += contention_note(data["decode"].get("other_cpu_cores"), data["decode"].get("threads", 1))


def attention_targets(data: dict[str, Any], cfg: AttentionBenchConfig, device: torch.device,
                      log: Log) -> list[dict[str, Any]]:
    targets = [_dot_vs_sdpa(data["ratios"], cfg, device), *_vs_dot(data["ratios"], cfg, device),
               *_memory(data["rows"]), _no_time_skips(data["rows"], cfg.lengths), _parity(),
               *_decode_targets(data["decode"], cfg, device)]
    add_contention_notes(targets, data)
    for tg in targets:
        measured = "n/a" if tg["measured"] is None else f"{tg['measured']:.3g}"
        log(f"[attention] target {tg['name']}: {tg['status']} ({measured}) — {tg['goal']}")
    return targets

