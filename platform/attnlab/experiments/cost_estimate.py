"""What an ablation preset costs in compute: runs, tokens, training FLOPs and GPU-hours (`reproduce --dry-run`).

Counted from the resolved grid, nothing is trained: fine-tuning runs = rows × tasks × seeds; pretraining runs = one
per distinct pretraining config (the grid keys its pretraining cache by the config hash, so rows that differ only
after pretraining, e.g. ALBERT tied and untied, share one per corpus). Tokens per run = batch_size × task.max_length
× max_steps: an upper bound (padding counted, early stops ignored). Training FLOPs = 3 × forward FLOPs/token ×
tokens (forward + a backward of about twice the forward), forward FLOPs/token from `model.flops.flops_per_token`
(the Transformer body: embeddings lookups and task/LM heads not counted). Seconds = FLOPs / achieved FLOP/s, where
achieved FLOP/s is either a reference GPU's peak × an assumed MFU, or measured: `attnlab bench gpu`'s training
tokens/s × 3 × its model's forward FLOPs/token (so the preset's tokens/s is the measured one scaled by the FLOPs/token
ratio). A measured CPU FLOP/s (CPU records: tokens/s × 3 × FLOPs/token) gives the same work's time on this CPU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab.config import AttentionConfig, ConfigError, ModelConfig, config_hash, from_dict
from attnlab.errors import DataError
from attnlab.experiments.grid import pretrain_run_config
from attnlab.experiments.grid_config import AblationConfig, Resolved
from attnlab.model.flops import flops_per_token
from attnlab.paths import results_dir
from attnlab.record import Record

REFERENCE_GPU = "A100 80GB"
REFERENCE_PEAK_FLOPS = 312e12  # dense bf16 tensor-core peak (data sheet)
REFERENCE_MFU = 0.35
TRAIN_FLOPS_FACTOR = 3  # forward + backward (≈ 2 × forward)
MEASURE_COMMAND = "attnlab bench gpu"


@dataclass(frozen=True)
class GpuThroughput:
    """A measured GPU training throughput: `attnlab bench gpu`'s model at `tokens_per_s` (its forward FLOPs/token
    by the same analytic count as the grid's models)."""

    device: str
    tokens_per_s: float
    flops_per_token: float
    source: str  # the result file

    @property
    def flops_per_s(self) -> float:
        return self.tokens_per_s * TRAIN_FLOPS_FACTOR * self.flops_per_token


@dataclass(frozen=True)
class CostEstimate:
    ablation: str
    preset: str
    rows: int
    tasks: int
    seeds: int
    finetune_runs: int
    pretrain_runs: int
    finetune_tokens: int  # summed over runs
    pretrain_tokens: int
    finetune_flops: float  # training FLOPs, summed over runs
    pretrain_flops: float
    gpu_flops_per_s: float  # achieved: peak × MFU, or measured
    measured: bool  # the GPU rate comes from `attnlab bench gpu`
    basis: str  # what the GPU rate rests on, in words
    cpu_flops_per_s: float | None = None
    cpu_basis: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.finetune_tokens + self.pretrain_tokens

    @property
    def total_flops(self) -> float:
        return self.finetune_flops + self.pretrain_flops

    @property
    def gpu_hours(self) -> float:
        return self.total_flops / self.gpu_flops_per_s / 3600

    @property
    def cpu_hours(self) -> float | None:
        return None if not self.cpu_flops_per_s else self.total_flops / self.cpu_flops_per_s / 3600


def _train_cost(cfg: Any) -> tuple[int, float]:
    """(tokens, training FLOPs) of one run of `cfg` (a RunConfig)."""
    tokens = cfg.train.batch_size * cfg.task.max_length * cfg.train.max_steps
    return tokens, TRAIN_FLOPS_FACTOR * flops_per_token(cfg.model, cfg.task.max_length) * tokens


def estimate(abl: AblationConfig, r: Resolved, *, device_flops: float | None = None, mfu: float | None = None,
             measured: GpuThroughput | None = None, cpu_records: Sequence[Record] = (),
             cpu_source: str = "") -> CostEstimate:
    """The compute of preset `r` of `abl`. The GPU rate: `device_flops` × `mfu` when either is given (the other
    from the reference GPU), else `measured` when given, else the reference GPU (A100, assumed MFU 0.35).
    `cpu_records` (e.g. a CPU preset's records.jsonl, read from `cpu_source`) add the time on this CPU."""
    from attnlab.tasks import get_task

    ft_tokens, ft_flops = 0, 0.0
    for row in r.rows:
        for task in r.tasks:  # the seed changes no size: one config per (row, task), times the seeds
            tokens, flops = _train_cost(abl.run_config(r, row, task, r.seeds[0]))
            ft_tokens += tokens * len(r.seeds)
            ft_flops += flops * len(r.seeds)
    pretrainings: dict[str, Any] = {}
    if r.pretrain is not None:
        languages = sorted({get_task(t).language for t in r.tasks})
        for row in r.rows:
            if not row.pretrain:
                continue
            for language in languages:  # the grid's own cache key: rows with equal pretraining configs share one
                cfg = pretrain_run_config(abl, r, row, language)
                pretrainings.setdefault(config_hash(cfg), cfg)
    pre = [_train_cost(cfg) for cfg in pretrainings.values()]
    if device_flops is not None or mfu is not None or measured is None:
        peak = REFERENCE_PEAK_FLOPS if device_flops is None else device_flops
        use_mfu = REFERENCE_MFU if mfu is None else mfu
        if peak <= 0 or not 0 < use_mfu <= 1:
            raise ValueError(f"device_flops must be > 0 and mfu in (0, 1]; got {peak}, {use_mfu}")
        device = f"{REFERENCE_GPU}, bf16 dense peak" if device_flops is None else "given peak"
        rate, is_measured = peak * use_mfu, False
        basis = f"assumed: {device} {peak / 1e12:g} TFLOP/s, MFU {use_mfu:g}"
    else:
        rate, is_measured = measured.flops_per_s, True
        basis = (f"measured on {measured.device} by {MEASURE_COMMAND} ({measured.source}): "
                 f"{measured.tokens_per_s:,.0f} tokens/s at {measured.flops_per_token / 1e6:,.1f} MFLOP/token")
    cpu_rate, cpu_basis = cpu_flops_per_s(cpu_records)
    if cpu_basis and cpu_source:
        cpu_basis += f" in {cpu_source}"
    return CostEstimate(abl.name, r.preset, len(r.rows), len(r.tasks), len(r.seeds),
                        len(r.rows) * len(r.tasks) * len(r.seeds), len(pre), ft_tokens, sum(t for t, _ in pre),
                        ft_flops, sum(f for _, f in pre), rate, is_measured, basis, cpu_rate, cpu_basis)


def record_flops_per_token(rec: Record) -> float | None:
    """The record's forward FLOPs/token, or the analytic count from its stored config (records written before
    `cost.flops_per_token` existed); None when neither is available."""
    if rec.cost.flops_per_token:
        return rec.cost.flops_per_token
    try:
        model = from_dict(ModelConfig, rec.config.get("model"), "model")
        return flops_per_token(model, int(rec.config["task"]["max_length"]))
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def cpu_flops_per_s(records: Sequence[Record]) -> tuple[float | None, str | None]:
    """Achieved training FLOP/s of one CPU run: the mean over CPU records of tokens/s × 3 × FLOPs/token."""
    rates = []
    for rec in records:
        fpt = record_flops_per_token(rec)
        if rec.device == "cpu" and fpt and rec.cost.train_tokens_per_s > 0:
            rates.append(rec.cost.train_tokens_per_s * TRAIN_FLOPS_FACTOR * fpt)
    if not rates:
        return None, None
    mean = sum(rates) / len(rates)
    return mean, f"{mean / 1e9:.1f} GFLOP/s achieved per run, mean of {len(rates)} CPU runs"


def gpu_bench_path() -> Path:
    """Where `attnlab bench gpu` writes by default (`--out results/bench`)."""
    return results_dir() / "bench" / "gpu.json"


def load_gpu_bench(path: Path | None = None) -> GpuThroughput | None:
    """The training throughput of an `attnlab bench gpu` result file; None when there is none, or when it was
    not a GPU run (`--device cpu --tiny`: a test of the script, not a measurement)."""
    p = path or gpu_bench_path()
    if not p.is_file():
        return None
    fix = f"rerun `{MEASURE_COMMAND}` (it rewrites the file) or delete {p}"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{p}: not readable JSON ({e}); {fix}") from None
    if not isinstance(data, dict) or not data.get("tested_on_gpu"):
        return None
    try:
        tps = float(data["training"]["tokens_per_s"])
        c = data["config"]
        model = ModelConfig(vocab_size=int(c["vocab_size"]), max_len=int(c["seq_len"]), d_model=int(c["d_model"]),
                            n_heads=int(c["n_heads"]), n_layers=int(c["n_layers"]), d_ff=4 * int(c["d_model"]),
                            mask="causal", norm_position="pre", attention=AttentionConfig(kind="dot"))
        fpt = flops_per_token(model, int(c["seq_len"]))  # the same model as bench/gpu.py `_lm`
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{p}: training.tokens_per_s / config.{{d_model, n_layers, n_heads, seq_len, vocab_size}}: "
                        f"missing or malformed ({type(e).__name__}: {e}); {fix}") from None
    if not (math.isfinite(tps) and tps > 0):
        raise DataError(f"{p}: training.tokens_per_s: expected a positive number, got {tps}; {fix}")
    machine = data.get("machine") or {}
    device = str(machine.get("gpu") or machine.get("device") or "an unnamed GPU")
    return GpuThroughput(device, tps, fpt, str(p))


def _count(x: float) -> str:
    return f"{x:.2e}" if x >= 1e6 else f"{x:,.0f}"


def _hours(hours: float) -> str:
    return f"{hours:,.1f}" if hours >= 10 else f"{hours:.2f}" if hours >= 0.01 else f"< 0.01 ({hours * 3600:.1g} s)"


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.1f} min"
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.0f} days"


def gpu_hours_text(est: CostEstimate) -> str:
    """"GPU-hours: N on one GPU (what the rate rests on)", and how to measure it when it was assumed."""
    return (f"GPU-hours: {_hours(est.gpu_hours)} on one GPU ({est.basis})"
            + ("" if est.measured else f"; measure it: `{MEASURE_COMMAND}`"))


def cost_lines(est: CostEstimate) -> list[str]:
    """A short Markdown bullet list: runs, tokens, FLOPs, GPU-hours and what they rest on."""
    pre = f" + {est.pretrain_runs} pretraining (one per distinct pretraining config)" if est.pretrain_runs else ""
    pre_tok = f" + {_count(est.pretrain_tokens)} pretraining" if est.pretrain_runs else ""
    lines = [
        f"- compute (preset {est.preset}): {est.finetune_runs} fine-tuning runs "
        f"({est.rows} rows × {est.tasks} tasks × {est.seeds} seeds){pre}",
        f"- tokens: {_count(est.finetune_tokens)} fine-tuning{pre_tok} (batch_size × task.max_length × max_steps "
        "per run: an upper bound, padding counted)",
        f"- training FLOPs: {_count(est.total_flops)} (3 × forward FLOPs/token × tokens: forward + backward; "
        "Transformer body only, no embeddings or heads)",
        f"- {gpu_hours_text(est)}",
    ]
    if est.cpu_hours is not None:
        lines.append(f"- on this CPU: {_duration(est.cpu_hours)} ({est.cpu_basis})")
    return lines
