"""`attnlab bench gpu`: what only a GPU run can say, in one script sized for ≤ 8 minutes on one GPU.

1. Training: a causal LM (default GPT-2-small shape) in bf16 autocast, tokens/s and MFU against the
   device's dense bf16 peak (spec sheet, `PEAK_TFLOPS`; a measured bf16 matmul peak is reported too).
   Model FLOPs as in `attnlab bench train`: 6·N_linear·tokens + 12·L·T·d·tokens.
2. One attention layer, fwd+bwd: attnlab `dot` (SDPA picks its kernel) vs SDPA forced onto the
   flash kernel vs the explicit softmax; attnlab `linear` (causal, chunked) vs the
   `flash-linear-attention` Triton kernels (`fla`, an optional extra: skipped when not installed).
3. Causal decoding, whole model: time per token after L tokens, dot + KV cache vs linear.
Each section stops starting new measurements once `budget_s` has passed. `--device cpu --tiny` runs
every part at toy size (the tests do), in fp32 (bf16 matmuls on a CPU are not what this measures).
UNTESTED ON A GPU so far: no GPU was available when it was written; treat its first GPU run as a
shake-down.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attnlab.bench.common import (
    load_average,
    machine_info,
    median,
    pick_device,
    synchronize,
    time_rounds,
    write_json,
)
from attnlab.bench.config import GpuBenchConfig, LayerShape, Log
from attnlab.bench.layers import build_layer, make_step
from attnlab.bench.report import provenance, table

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s; first match wins.
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("H800", 989.4), ("A100", 312.0),
               ("L40S", 362.1), ("L4", 121.0), ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0))


def device_peak(device: torch.device, cfg: GpuBenchConfig) -> tuple[float | None, str]:
    if cfg.peak_tflops > 0:
        return cfg.peak_tflops * 1e12, "given (--peak-tflops)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in PEAK_TFLOPS:
            if key in name:
                return tflops * 1e12, f"data-sheet dense bf16 peak of {key}"
    return None, "unknown device: MFU against the measured matmul peak only"


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    times = time_rounds({"mm": lambda: a @ b}, 5, device, warmup=2)["mm"]
    return 2.0 * n**3 / min(times)


def _lm(kind: str, cfg: GpuBenchConfig, max_len: int, device: torch.device) -> Any:
    from attnlab.config import AttentionConfig, ModelConfig
    from attnlab.model import CausalLM

    torch.manual_seed(cfg.seed)
    mcfg = ModelConfig(vocab_size=cfg.vocab_size, max_len=max_len, d_model=cfg.d_model, n_heads=cfg.n_heads,
                       n_layers=cfg.n_layers, d_ff=4 * cfg.d_model, dropout=0.0, attention_dropout=0.0,
                       mask="causal", norm_position="pre", attention=AttentionConfig(kind=kind))
    return CausalLM(mcfg).to(device)


def training(cfg: GpuBenchConfig, device: torch.device, dtype: torch.dtype, log: Log) -> dict[str, Any]:
    model = _lm("dot", cfg, cfg.seq_len, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    ids = torch.randint(5, cfg.vocab_size, (cfg.batch, cfg.seq_len + 1), device=device)  # (B, T+1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            logits = model(ids[:, :-1])  # (B, T, V)
        F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten()).backward()
        opt.step()

    times = time_rounds({"train": step}, cfg.train_steps, device, warmup=cfg.warmup_steps)["train"]
    tokens = cfg.batch * cfg.seq_len
    n_linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    flops = 6 * n_linear * tokens + 12 * cfg.n_layers * cfg.seq_len * cfg.d_model * tokens
    step_s = median(times)
    peak, peak_source = device_peak(device, cfg)
    measured_peak = matmul_peak(device, dtype, 8192 if device.type == "cuda" else 512)
    out = {"tokens_per_s": tokens / step_s, "step_ms": 1000 * step_s, "gflops_per_step": flops / 1e9,
           "achieved_tflops": flops / step_s / 1e12, "peak_tflops": peak / 1e12 if peak else None,
           "peak_source": peak_source, "measured_matmul_tflops": measured_peak / 1e12,
           "mfu": flops / step_s / peak if peak else None, "mfu_vs_measured_matmul": flops / step_s / measured_peak,
           "params": sum(p.numel() for p in model.parameters())}
    log(f"[gpu] training {out['tokens_per_s']:,.0f} tokens/s, {out['achieved_tflops']:.1f} TFLOP/s, MFU "
        + (f"{100 * out['mfu']:.1f}%" if out["mfu"] is not None else "n/a") + f" ({peak_source})")
    return out


class _Forced(torch.nn.Module):
    """A layer run with SDPA forced onto one backend (flash) — what the fused path can reach."""

    def __init__(self, inner: torch.nn.Module, backend: Any) -> None:
        super().__init__()
        self.inner, self.backend = inner, backend

    def forward(self, x: torch.Tensor, mask: Any) -> torch.Tensor:
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel(self.backend):
            return self.inner(x, mask)  # type: ignore[no-any-return]


def fla_step(shape: LayerShape, t: int, device: torch.device, dtype: torch.dtype) -> Any:
    """fwd+bwd of `fla`'s causal linear attention on φ(q), φ(k) (elu + 1, as attnlab's), or the reason it
    cannot run. `fla` is import-guarded: an optional extra (`pip install flash-linear-attention`)."""
    try:
        from fla.ops.linear_attn import chunk_linear_attn
    except ImportError as e:
        return f"not run: flash-linear-attention not installed ({e.name})"
    h, d = shape.n_heads, shape.head_size
    q, k, v = (torch.randn(shape.batch, t, h, d, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape.batch, t, h, d, device=device, dtype=dtype)

    def step() -> None:  # (B, T, H, d) inputs: fla ≥ 0.2's layout (`head_first=False`)
        out = chunk_linear_attn(F.elu(q) + 1, F.elu(k) + 1, v, normalize=True)
        (out[0] if isinstance(out, tuple) else out).backward(grad)

    return step


def attention_layers(cfg: GpuBenchConfig, device: torch.device, dtype: torch.dtype, log: Log,
                     deadline: float) -> list[dict[str, Any]]:
    from torch.nn.attention import SDPBackend

    from attnlab.attention.masks import AttentionMask

    shape = LayerShape(cfg.layer_batch, cfg.d_model, cfg.n_heads)
    rows = []
    for t in cfg.lengths:
        if time.monotonic() > deadline:
            rows.append({"T": t, "status": "skipped: time budget"})
            continue
        steps: dict[str, Any] = {}
        for name in ("dot", "linear", "explicit_softmax"):
            if name == "explicit_softmax" and shape.batch * shape.n_heads * t * t * 2 * 4 > 8 * 2**30:
                continue  # its T×T tensors would not fit a sensible budget
            layer = build_layer(name, shape, t, device)
            mask = AttentionMask("causal") if name == "linear" else AttentionMask("bidirectional")
            steps[name] = _autocast(make_step(layer, shape, t, device, mask), device, dtype)
        if device.type == "cuda":
            flash = _Forced(build_layer("dot", shape, t, device), SDPBackend.FLASH_ATTENTION)
            steps["dot_flash_forced"] = _autocast(make_step(flash, shape, t, device), device, dtype)
        fla = fla_step(shape, t, device, dtype)
        row: dict[str, Any] = {"T": t, "status": "ok", "fla": fla if isinstance(fla, str) else "ok"}
        if not isinstance(fla, str):
            steps["fla_linear"] = fla
        try:
            times = time_rounds(steps, 5, device, warmup=1)
        except (RuntimeError, torch.OutOfMemoryError) as e:  # one kernel's limits must not end the run
            rows.append({"T": t, "status": f"failed: {type(e).__name__}: {str(e)[:160]}"})
            continue
        row.update({f"{n} ms": 1000 * median(ts) for n, ts in times.items()})
        rows.append(row)
        log(f"[gpu] T={t}: " + ", ".join(f"{n} {1000 * median(ts):.2f} ms" for n, ts in times.items()))
    return rows


def _autocast(fn: Any, device: torch.device, dtype: torch.dtype) -> Any:
    def run() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            fn()

    return run


def decoding(cfg: GpuBenchConfig, device: torch.device, log: Log, deadline: float) -> list[dict[str, Any]]:
    """Whole-model time per generated token after L tokens (fp32 weights: latency, not throughput)."""
    rows = []
    for length in cfg.decode_lengths:
        if time.monotonic() > deadline:
            rows.append({"L": length, "status": "skipped: time budget"})
            continue
        ids = torch.randint(5, cfg.vocab_size, (1, length + cfg.decode_steps), device=device)
        row: dict[str, Any] = {"L": length, "status": "ok"}
        with torch.no_grad():
            for kind in ("dot", "linear"):
                model = _lm(kind, cfg, length + cfg.decode_steps, device).eval()
                _, cache0 = model.prefill(ids[:, :length])

                def run(model: Any = model, cache0: Any = cache0, ids: torch.Tensor = ids, start: int = length) -> None:
                    cache = cache0
                    for i in range(start, start + cfg.decode_steps):
                        _, cache = model.step(ids[:, i : i + 1], cache)

                ts = time_rounds({kind: run}, 3, device, warmup=1)[kind]
                row[f"{kind} ms/token"] = 1000 * median(ts) / cfg.decode_steps
                del model, cache0
        row["dot/linear"] = row["dot ms/token"] / row["linear ms/token"]
        rows.append(row)
        log(f"[gpu] decode L={length}: dot {row['dot ms/token']:.3f} ms/token, linear {row['linear ms/token']:.3f}")
    return rows


def run_gpu_bench(cfg: GpuBenchConfig, out_dir: Path | str, log: Log = print) -> dict[str, Any]:
    """Run the three parts, write gpu.{json,md} under `out_dir`, return the JSON data."""
    device = pick_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    dtype = torch.bfloat16 if cfg.dtype == "bf16" and device.type == "cuda" else torch.float32
    started, load_at_start = time.time(), load_average()
    deadline = time.monotonic() + cfg.budget_s
    data: dict[str, Any] = {"benchmark": "gpu", "command": cfg.command,
                            "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
                            "dtype": str(dtype).removeprefix("torch."),
                            "tested_on_gpu": device.type == "cuda"}
    data["training"] = training(cfg, device, dtype, log)
    data["attention"] = attention_layers(cfg, device, dtype, log, deadline)
    data["decode"] = decoding(cfg, device, log, deadline)
    synchronize(device)
    data["machine"] = machine_info(device, load_at_start)
    data["wall_time_s"] = time.time() - started
    out = Path(out_dir)
    write_json(out / "gpu.json", data)
    (out / "gpu.md").write_text(gpu_markdown(data))
    log(f"[gpu] wrote {out / 'gpu.json'}, gpu.md ({data['wall_time_s']:.0f} s)")
    return data


def gpu_markdown(data: dict[str, Any]) -> str:
    tr, cfg = data["training"], data["config"]
    mfu = "n/a" if tr["mfu"] is None else f"{100 * tr['mfu']:.1f}%"
    att = [r for r in data["attention"] if r.get("status") == "ok"]
    names = sorted({k.removesuffix(" ms") for r in att for k in r if k.endswith(" ms")})
    return "\n".join([
        "# attnlab bench gpu", "", provenance(data), "",
        "" if data["tested_on_gpu"] else "**Not a GPU run** (toy size on a CPU, fp32): the numbers test the "
        "script, they say nothing about GPUs.", "",
        f"## Training ({data['dtype']}, causal LM d_model {cfg['d_model']}, {cfg['n_layers']} layers, T {cfg['seq_len']}, "
        f"batch {cfg['batch']})", "",
        table(["tokens/s", "step ms", "TFLOP/s", "peak TFLOP/s (source)", "MFU", "measured matmul TFLOP/s",
               "MFU vs measured matmul"],
              [[tr["tokens_per_s"], tr["step_ms"], tr["achieved_tflops"], f"{tr['peak_tflops']} ({tr['peak_source']})",
                mfu, tr["measured_matmul_tflops"], f"{100 * tr['mfu_vs_measured_matmul']:.1f}%"]]), "",
        "## One attention layer, fwd+bwd (ms)", "",
        table(["T", *names, "fla"], [[r["T"], *[r.get(f"{n} ms") for n in names], r.get("fla")] for r in att]),
        "", *[f"- T={r['T']}: {r['status']}" for r in data["attention"] if r.get("status") != "ok"], "",
        "## Causal decoding, whole model (ms per token)", "",
        table(["L", "dot", "linear", "dot/linear"],
              [[r["L"], r.get("dot ms/token"), r.get("linear ms/token"), r.get("dot/linear")]
               for r in data["decode"]]), "",
        f"MFU = model FLOPs / step time / peak; model FLOPs per step = 6·N_linear·tokens + 12·L·T·d·tokens "
        f"({tr['gflops_per_step']:.1f} GFLOP).",
    ])
