"""`attnlab bench attention`: forward+backward time and peak memory of every attention variant vs
sequence length, against references in the same process (see `references.py`), plus causal
decoding cost per token (`decode.py`). Writes attention.json, attention.md and attention.png.

Per length T all layers are built, warmed up once, then timed in interleaved rounds (common.py).
A layer is skipped, not crashed, when its T×T tensors would exceed the memory budget or, beyond
the targets' longest length (T > 4096, `--long`) and outside the core layers, when its time per
call, extrapolated as T² from the previous length, would exceed `max_call_s`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from attnlab.bench import memory
from attnlab.bench.attention_targets import TARGET_T, attention_targets
from attnlab.bench.common import (
    OtherLoad,
    load_average,
    machine_info,
    median,
    model_code_state,
    paired_ratio,
    pick_device,
    time_rounds,
    wait_for_quiet,
    write_json,
)
from attnlab.bench.config import AttentionBenchConfig, Log
from attnlab.bench.decode import run_decode_bench
from attnlab.bench.layers import (
    CORE,
    build_layer,
    is_reference,
    layer_names,
    make_step,
    quadratic_bytes,
)
from attnlab.bench.report import write_attention_report

RATIO_PAIRS = (("dot", "sdpa"), ("dot", "explicit_softmax"), ("dot", "hf_bert"), ("linear", "dot"),
               ("linear", "explicit_linear"))


def _skip_reason(name: str, t: int, cfg: AttentionBenchConfig, last: dict[str, tuple[int, float]]) -> str | None:
    need = quadratic_bytes(name, cfg.shape, t)
    if need > cfg.memory_budget_gib * 2**30:
        return f"skipped: too big (~{need / 2**30:.1f} GiB of T×T tensors > {cfg.memory_budget_gib:g} GiB budget)"
    if name not in CORE and name in last and t > TARGET_T:  # every target's length is always measured
        t_prev, s_prev = last[name]
        projected = s_prev * (t / t_prev) ** 2
        if projected > cfg.max_call_s:
            return f"skipped: too slow (~{projected:.1f} s/call projected > {cfg.max_call_s:g} s)"
    return None


def _time_length(t: int, names: list[str], cfg: AttentionBenchConfig, device: torch.device,
                 last: dict[str, tuple[int, float]], log: Log) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    rows: list[dict[str, Any]] = []
    steps: dict[str, Callable[[], None]] = {}
    warm_s: dict[str, float] = {}
    torch.manual_seed(cfg.seed)
    for name in names:
        reason = _skip_reason(name, t, cfg, last)
        if reason is None:
            try:
                steps[name] = make_step(build_layer(name, cfg.shape, t, device), cfg.shape, t, device)
                start = time.perf_counter()
                steps[name]()  # warm-up call, timed only to size the rounds
                warm_s[name] = time.perf_counter() - start
            except (RuntimeError, MemoryError) as e:  # CPU OOM surfaces as RuntimeError
                steps.pop(name, None)
                reason = f"skipped: {type(e).__name__}: {str(e)[:100]}"
        if reason is not None:
            rows.append({"layer": name, "T": t, "status": reason})
            log(f"[attention] T={t:<5d} {name:<30} {reason}")
    round_s = sum(warm_s.values())
    rounds = cfg.repeats
    if round_s * cfg.repeats > cfg.length_budget_s:
        rounds = max(min(cfg.min_repeats, cfg.repeats), int(cfg.length_budget_s / max(round_s, 1e-9)))
    other = OtherLoad()
    other.start()
    times = time_rounds(steps, rounds, device, warmup=0)
    other_cores = other.stop()
    log(f"[attention] T={t:<5d} other processes used {other_cores} cores on average while timing")
    for name, ts in times.items():
        ms = 1000 * median(ts)
        last[name] = (t, ms / 1000)
        rows.append({"layer": name, "T": t, "status": "ok", "time_ms": ms, "times_ms": [1000 * s for s in ts],
                     "rounds": rounds, "reference": is_reference(name), "other_cpu_cores": other_cores})
        log(f"[attention] T={t:<5d} {name:<30} {ms:10.2f} ms  (median of {rounds} interleaved rounds)")
    del steps
    gc.collect()
    return rows, times


def _ratios(times: dict[str, list[float]], names: list[str]) -> dict[str, float]:
    pairs = list(RATIO_PAIRS) + [(n, "dot") for n in names if n not in CORE]
    return {f"{a}/{b}": paired_ratio(times[a], times[b]) for a, b in pairs if a in times and b in times}


def _attach_memory(rows: list[dict[str, Any]], cfg: AttentionBenchConfig, device: torch.device, log: Log) -> None:
    todo = [(r["layer"], r["T"]) for r in rows if r["status"] == "ok"]
    if device.type == "cuda":
        results: dict[tuple[str, int], float | str] = {}
        for name, t in todo:
            try:
                results[(name, t)] = memory.measure_one(name, cfg.shape, t, device, cfg.seed)
            except torch.OutOfMemoryError as e:
                results[(name, t)] = f"skipped: out of memory ({str(e)[:80]})"
    else:
        log(f"[attention] peak memory: {len(todo)} configurations in a child process")
        results = memory.measure_in_child(todo, cfg.shape, cfg.seed, threads=torch.get_num_threads())
    for r in rows:
        value = results.get((r["layer"], r["T"]))
        if isinstance(value, float):
            r["peak_mib"] = value
        elif value is not None:
            r["memory_status"] = value


def run_attention_bench(cfg: AttentionBenchConfig, out_dir: Path | str, log: Log = print) -> dict[str, Any]:
    """Run the benchmark, write attention.{json,md,png} under `out_dir`, return the JSON data."""
    cfg.validate()
    device = pick_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.wait_quiet_s > 0:
        wait_for_quiet(cfg.wait_quiet_s, log)
    names = layer_names(cfg.variants)
    started, load_at_start, code_at_start = time.time(), load_average(), model_code_state()
    rows: list[dict[str, Any]] = []
    ratios: dict[str, dict[str, float]] = {}
    last: dict[str, tuple[int, float]] = {}
    for t in sorted(cfg.lengths):
        t_rows, times = _time_length(t, names, cfg, device, last, log)
        rows += t_rows
        ratios[str(t)] = _ratios(times, names)
    if cfg.measure_memory:
        _attach_memory(rows, cfg, device, log)
    decode = run_decode_bench(cfg, device, log)
    data: dict[str, Any] = {
        "benchmark": "attention",
        "command": cfg.command,
        "machine": machine_info(device, load_at_start, code_at_start),
        "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
        "layers": {n: ("reference" if is_reference(n) else "attnlab") for n in names},
        "memory_method": (memory.METHOD_CUDA if device.type == "cuda" else memory.METHOD_CPU)
        if cfg.measure_memory else "not measured (--no-memory)",
        "rows": rows,
        "ratios": ratios,
        "decode": decode,
    }
    data["targets"] = attention_targets(data, cfg, device, log)
    data["wall_time_s"] = time.time() - started
    out = Path(out_dir)
    write_json(out / "attention.json", data)
    write_attention_report(data, out)
    log(f"[attention] wrote {out / 'attention.json'}, attention.md, attention.png ({data['wall_time_s']:.0f} s)")
    return data
