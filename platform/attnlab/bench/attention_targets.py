"""PASS/MISS of the attention and decoding targets, judged on the measured ratios; a missed timing
target gets a short torch.profiler run whose top ops are written next to it (the measured reason)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from attnlab.bench.common import contention_note, format_ops, target, top_ops
from attnlab.bench.layers import build_layer, make_step

if TYPE_CHECKING:
    from attnlab.bench.attention import AttentionBenchConfig

Log = Callable[[str], None]
TARGET_T = 4096
FLAT_MAX_GROWTH = 1.5  # "flat": per-token time at the longest L ≤ 1.5× that at the shortest


def _at_target_t(available: list[int]) -> tuple[int | None, str]:
    if not available:
        return None, ""
    if TARGET_T in available:
        return TARGET_T, ""
    return max(available), f" (T={TARGET_T} not measured: judged at T={max(available)})"


def _profile_layers(names: list[str], t: int, cfg: AttentionBenchConfig, device: torch.device) -> dict[str, Any]:
    out = {}
    for name in names:
        torch.manual_seed(cfg.seed)
        step = make_step(build_layer(name, cfg.shape, t, device), cfg.shape, t, device)
        out[name] = top_ops(step)
    return out


def _profile_text(profiles: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {format_ops(ops[:3])}" for name, ops in profiles.items())


def _other_load_at(rows: list[dict[str, Any]], t: int) -> float | None:
    return next((r["other_cpu_cores"] for r in rows if r["T"] == t and r.get("other_cpu_cores") is not None), None)


def _dot_vs_sdpa(ratios: dict[str, dict[str, float]], cfg: AttentionBenchConfig, device: torch.device) -> dict[str, Any]:
    goal = "dot ≤ 1.1× raw SDPA (same projections) fwd+bwd time, at every T"
    per_t = {int(t): r["dot/sdpa"] for t, r in ratios.items() if "dot/sdpa" in r}
    if not per_t:
        return target("dot_vs_sdpa", goal, None, None, "dot or sdpa not measured")
    worst_t = max(per_t, key=lambda t: per_t[t])
    geo = math.exp(sum(math.log(v) for v in per_t.values()) / len(per_t))
    tg = target("dot_vs_sdpa", goal, per_t[worst_t], per_t[worst_t] <= 1.1,
                f"worst T={worst_t}; geometric mean over T {geo:.3f}")
    tg["judged_T"] = worst_t
    if tg["status"] == "MISS":
        tg["profile"] = _profile_layers(["dot", "sdpa"], worst_t, cfg, device)
        tg["detail"] += f"; profile at T={worst_t}: {_profile_text(tg['profile'])}"
    return tg


def _linear_vs_dot(ratios: dict[str, dict[str, float]], cfg: AttentionBenchConfig, device: torch.device) -> dict[str, Any]:
    goal = f"linear ≥ 4× faster than dot (fwd+bwd) at T={TARGET_T}"
    t, note = _at_target_t([int(t) for t, r in ratios.items() if "linear/dot" in r])
    if t is None:
        return target("linear_vs_dot", goal, None, None, "linear or dot not measured")
    speedup = 1 / ratios[str(t)]["linear/dot"]
    tg = target("linear_vs_dot", goal, speedup, speedup >= 4.0, f"dot/linear time at T={t}{note}")
    tg["judged_T"] = t
    if tg["status"] == "MISS":
        tg["profile"] = _profile_layers(["linear", "dot"], t, cfg, device)
        tg["detail"] += f"; profile: {_profile_text(tg['profile'])}"
    return tg


def _linear_memory(data: dict[str, Any]) -> dict[str, Any]:
    from attnlab.bench.attention import memory_slope

    goal = "linear attention peak memory grows linearly in T (log-log slope ≤ 1.15)"
    slope, ts = memory_slope(data["rows"], "linear")
    if math.isnan(slope):
        return target("linear_memory", goal, None, None, "peak memory of linear not measured at ≥ 2 lengths")
    dot_slope, _ = memory_slope(data["rows"], "explicit_softmax")
    return target("linear_memory", goal, slope, slope <= 1.15,
                  f"slope over T={ts[0]}..{ts[-1]}; explicit softmax slope {dot_slope:.2f} for contrast")


def _decode_targets(decode: dict[str, Any], cfg: AttentionBenchConfig, device: torch.device) -> list[dict[str, Any]]:
    rows = decode["rows"]
    level = "model" if "model" in decode["levels"] else "attention"
    dot_key, lin_key = ("model:dot", "model:linear") if level == "model" else ("attn:dot.step", "attn:linear.step")
    flat_goal = f"linear decoding per-token time flat in L (longest/shortest ≤ {FLAT_MAX_GROWTH}×)"
    speed_goal = f"linear ≥ 20× faster per token than dot + KV cache at L={TARGET_T}"
    if not rows:
        return [target("decode_flat", flat_goal, None, None, "not measured"),
                target("decode_linear_vs_dot", speed_goal, None, None, "not measured")]
    first, last = rows[0], rows[-1]
    growth = last[f"{lin_key} ms/token"] / first[f"{lin_key} ms/token"]
    dot_growth = last[f"{dot_key} ms/token"] / first[f"{dot_key} ms/token"]
    flat = target("decode_flat", flat_goal, growth, growth <= FLAT_MAX_GROWTH,
                  f"{level} level, L={first['L']}→{last['L']}; dot + KV cache grows {dot_growth:.1f}× over the same range")
    t, note = _at_target_t([r["L"] for r in rows])
    assert t is not None  # rows is not empty
    row = next(r for r in rows if r["L"] == t)
    ratio = row[f"{level} dot/linear"] if level == "model" else row["attn dot/linear"]
    speed = target("decode_linear_vs_dot", speed_goal, ratio, ratio >= 20.0,
                   f"{level} level (CausalLM.step), L={t}{note}; attention layer alone: "
                   f"{row['attn dot/linear']:.1f}×")
    if speed["status"] == "MISS" or flat["status"] == "MISS":
        from attnlab.bench.decode import attention_level_calls, model_level_calls

        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.decode_threads)  # profile under the timing's conditions
        try:
            with torch.no_grad():
                fns, _ = (model_level_calls if level == "model" else attention_level_calls)(t, cfg, device)
                speed["profile"] = {name: top_ops(fn) for name, fn in fns.items() if name in (dot_key, lin_key)}
        finally:
            torch.set_num_threads(threads)
        text = f"; profile ({cfg.decode_steps} tokens at L={t}): {_profile_text(speed['profile'])}"
        for tg in (flat, speed):
            if tg["status"] == "MISS":
                tg["detail"] += text
    return [flat, speed]


def add_contention_notes(targets: list[dict[str, Any]], data: dict[str, Any]) -> None:
    """Caveat every timing target judged while other processes were busy (pure: reads `data` only)."""
    threads = data["machine"]["torch_threads"]
    for tg in targets:
        if tg["name"] in ("dot_vs_sdpa", "linear_vs_dot") and tg.get("judged_T") is not None:
            tg["detail"] += contention_note(_other_load_at(data["rows"], tg["judged_T"]), threads)
        elif tg["name"].startswith("decode_"):
            tg["detail"] += contention_note(data["decode"].get("other_cpu_cores"), data["decode"].get("threads", 1))


def attention_targets(data: dict[str, Any], cfg: AttentionBenchConfig, device: torch.device,
                      log: Log) -> list[dict[str, Any]]:
    targets = [_dot_vs_sdpa(data["ratios"], cfg, device), _linear_vs_dot(data["ratios"], cfg, device),
               _linear_memory(data), *_decode_targets(data["decode"], cfg, device)]
    add_contention_notes(targets, data)
    for tg in targets:
        measured = "n/a" if tg["measured"] is None else f"{tg['measured']:.3g}"
        log(f"[attention] target {tg['name']}: {tg['status']} ({measured}) — {tg['goal']}")
    return targets
