"""The speed columns of an ablation (linear attention): per variant and sequence length, one
attention layer's forward+backward time and peak memory, and causal decoding time per token at
that context length (KV cache for dot, recurrent state for linear) — all in this process,
variants interleaved. Cached in `speed.json` next to the report so reruns do not re-measure."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from attnlab.attention.masks import AttentionMask
from attnlab.bench.common import median, time_rounds
from attnlab.bench.config import LayerShape
from attnlab.bench.layers import build_layer, make_step
from attnlab.bench.memory import measure_in_child


def decode_ms_per_token(name: str, shape: LayerShape, context: int, steps: int = 16) -> float:
    """One attention layer decoding `steps` tokens after a `context`-token prompt (causal)."""
    layer = build_layer(name, shape, context + steps, torch.device("cpu")).eval()
    with torch.no_grad():
        _, state = layer.prefill(torch.randn(1, context, shape.d_model), AttentionMask("causal"))  # type: ignore[operator]
        x = torch.randn(1, 1, shape.d_model)
        start = time.perf_counter()
        for _ in range(steps):
            _, state = layer.step(x, state, "causal")  # type: ignore[operator]
    return 1000 * (time.perf_counter() - start) / steps


def speed_table(spec: dict[str, Any], cache: Path | None = None, rounds: int = 3) -> list[dict[str, Any]]:
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        if isinstance(saved, dict) and saved.get("spec") == spec:
            return list(saved["rows"])
        # the report's export (report/export.py) writes the same file as a plain list of rows: reuse it when it
        # covers exactly this spec's variants × lengths
        if isinstance(saved, list) and {(r.get("variant"), r.get("seq_len")) for r in saved if isinstance(r, dict)} \
                == {(v, int(t)) for v in spec.get("variants", ["dot", "linear"]) for t in spec.get("lengths", [])}:
            return list(saved)
    shape = LayerShape(int(spec.get("batch", 4)), int(spec.get("d_model", 128)), int(spec.get("n_heads", 4)))
    variants = list(spec.get("variants", ["dot", "linear"]))
    device = torch.device("cpu")
    rows = []
    lengths = [int(t) for t in spec.get("lengths", [128, 256, 512, 1024])]
    # Peak memory in a child process whose allocator returns freed buffers at once (see bench/memory.py).
    memory = measure_in_child([(v, t) for t in lengths for v in variants], shape)
    for t in lengths:
        steps = {v: make_step(build_layer(v, shape, t, device), shape, t, device) for v in variants}
        times = time_rounds(steps, rounds, device)
        for v in variants:
            measured = memory.get((v, t))
            mem = float(measured) if isinstance(measured, (int, float)) else float("nan")
            rows.append({"variant": v, "seq_len": int(t), "fwd_bwd_ms": 1000 * median(times[v]), "peak_mem_mb": mem,
                         "decode_ms_per_token": decode_ms_per_token(v, shape, int(t))})
            print(f"speed {v:>8} T={t:<6} fwd+bwd {rows[-1]['fwd_bwd_ms']:8.1f} ms  mem {mem:8.1f} MiB  "
                  f"decode {rows[-1]['decode_ms_per_token']:.2f} ms/token", flush=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"spec": spec, "rows": rows}, indent=2))
    return rows
