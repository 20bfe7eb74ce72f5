"""Peak memory of one forward+backward per (layer, T), measured on CPU in a separate process.

Why a separate process: the resident-set high-water mark (VmHWM) is the only CPU peak that sees
every allocation (torch's CPU allocator is plain malloc; tracemalloc sees none of it), and it is
only exact when freed memory leaves the process at once. The child starts with
MALLOC_MMAP_THRESHOLD_=65536 and MALLOC_TRIM_THRESHOLD_=131072, so every buffer ≥ 64 KiB is its
own mmap, returned to the OS on free; glibc's dynamic threshold (which would keep up to 32 MiB
freed buffers in the heap and hide them from the next measurement) is off. Per configuration the
child builds the layer, runs one warm-up forward+backward, frees the gradients, resets VmHWM to
the current RSS (/proc/self/clear_refs) and reports VmHWM − RSS after one more forward+backward:
activations, gradients and workspaces; not the parameters or the input.

Timing runs in the parent, with the default allocator settings, never here.

    python -m attnlab.bench.memory SPEC.json OUT.json
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attnlab.bench.common import peak_memory_mib, rss_peak_supported
from attnlab.bench.config import LayerShape
from attnlab.bench.layers import build_layer, make_step

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072"}
METHOD_CPU = ("peak RSS delta (VmHWM reset via /proc/self/clear_refs) in a child process whose glibc "
              "returns every buffer >= 64 KiB to the OS on free; one warm-up call first")
METHOD_CUDA = "torch.cuda.max_memory_allocated minus memory allocated before the call"


def measure_one(name: str, shape: LayerShape, seq_len: int, device: torch.device, seed: int = 0) -> float:
    torch.manual_seed(seed)
    layer = build_layer(name, shape, seq_len, device)
    step = make_step(layer, shape, seq_len, device)
    step()  # warm-up: one-time kernel caches and thread-pool buffers are not the layer's memory
    for p in layer.parameters():
        p.grad = None
    gc.collect()
    return peak_memory_mib(step, device)


def measure_in_child(configs: Sequence[tuple[str, int]], shape: LayerShape, seed: int = 0,
                     timeout_s: float = 1800, threads: int = 0) -> dict[tuple[str, int], float | str]:
    """Peak MiB per (layer name, T) from a child process; a string (the reason) where none came back."""
    if not configs:
        return {}
    if not rss_peak_supported():
        return {c: "not measured: needs Linux /proc/self/clear_refs" for c in configs}
    with tempfile.TemporaryDirectory(prefix="attnlab-bench-mem-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec = {"batch": shape.batch, "d_model": shape.d_model, "n_heads": shape.n_heads, "seed": seed,
                "threads": threads, "configs": [list(c) for c in configs]}
        spec_path.write_text(json.dumps(spec))
        platform_dir = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, **MALLOC_ENV,
               "PYTHONPATH": os.pathsep.join(p for p in (platform_dir, os.environ.get("PYTHONPATH")) if p)}
        try:
            done = subprocess.run([sys.executable, "-m", "attnlab.bench.memory", str(spec_path), str(out_path)],
                                  env=env, timeout=timeout_s, check=False)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
        results: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {}
    out: dict[tuple[str, int], float | str] = {}
    for name, t in configs:
        value = results.get(f"{name}@{t}")
        out[(name, t)] = value if value is not None else f"not measured: memory worker exited {code}"
    return out


def memory_slope(rows: list[dict[str, Any]], layer: str) -> tuple[float, list[int]]:
    """Log-log slope of peak memory vs T over the upper half of the measured lengths (≥ 2 points):
    1 = linear growth, 2 = quadratic. Small T is left out: fixed costs (weight gradients) dominate there."""
    pts = sorted((r["T"], r["peak_mib"]) for r in rows if r["layer"] == layer and r.get("peak_mib"))
    pts = pts[(len(pts) - 1) // 2:]
    if len(pts) < 2:
        return float("nan"), [t for t, _ in pts]
    xs, ys = [math.log(t) for t, _ in pts], [math.log(m) for _, m in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, [t for t, _ in pts]


def main(argv: Sequence[str]) -> int:
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    shape = LayerShape(spec["batch"], spec["d_model"], spec["n_heads"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    results: dict[str, float | str] = {}
    for name, t in spec["configs"]:
        try:
            mib: float | str = measure_one(name, shape, t, torch.device("cpu"), spec["seed"])
            print(f"[attention] memory T={t:<5d} {name:<30} {mib:10.1f} MiB", flush=True)
        except (RuntimeError, MemoryError) as e:  # CPU OOM is a RuntimeError from the allocator
            mib = f"skipped: {type(e).__name__}: {str(e)[:120]}"
            print(f"[attention] memory T={t:<5d} {name:<30} {mib}", flush=True)
        results[f"{name}@{t}"] = mib
        gc.collect()
        out_path.write_text(json.dumps(results))  # after every config: a crash keeps what finished
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
