"""`attnlab bench train`: training throughput of the full attnlab model vs transformers'
BertForSequenceClassification of the same size, model FLOPs utilisation against this machine's
measured fp32 matmul peak, and the platform's overhead on one real trial (`overhead.py`).
Writes train.json and train.md.

Throughput: both models train (embeddings → encoder → pooler → classifier, cross-entropy, AdamW
step) on the same random full-length batches, dropout 0, interleaved with a large fp32 matmul loop
in every round, so the peak and both models see the same machine state (common.py).

MFU = model FLOP/s ÷ matmul FLOP/s, per round, median over rounds. Model FLOPs per training
step (Kaplan et al. 2020 §2.1; PaLM, Chowdhery et al. 2022, App. B):
    6 · N · tokens  +  12 · n_layers · T · d_model · tokens
N = weights of every nn.Linear (matmul parameters; embedding lookups and LayerNorm are not
matmuls, biases are negligible); 6 = 2 (multiply-add) × 3 (forward + two backward matmuls).
The second term is QKᵀ and AV: 4·T·d_model FLOPs per token per layer forward, × 3 with backward,
over the full (bidirectional, unmasked) T×T.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.bench.common import (
    OtherLoad,
    contention_note,
    format_ops,
    load_average,
    machine_info,
    median,
    model_code_state,
    paired_ratio,
    pick_device,
    target,
    time_rounds,
    top_ops,
    wait_for_quiet,
    write_json,
)
from attnlab.bench.config import Log, TrainBenchConfig
from attnlab.bench.overhead import overhead_target, run_overhead
from attnlab.bench.report_train import write_train_report

MFU_TARGET, MFU_MIN_D_MODEL = 0.40, 256
COMPILE_SPEEDUP, LOSS_RTOL = 1.2, 1e-3


def linear_weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def model_flops(n_linear: int, n_layers: int, seq_len: int, d_model: int, tokens: int) -> float:
    return float(6 * n_linear * tokens + 12 * n_layers * seq_len * d_model * tokens)


def build_models(d_model: int, cfg: TrainBenchConfig, device: torch.device) -> dict[str, nn.Module]:
    from transformers import BertConfig, BertForSequenceClassification

    from attnlab.config import AttentionConfig, ModelConfig
    from attnlab.model import SequenceClassifier

    d_ff = cfg.d_ff_mult * d_model
    ours = SequenceClassifier(ModelConfig(
        vocab_size=cfg.vocab_size, max_len=cfg.seq_len, d_model=d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers,
        d_ff=d_ff, dropout=0.0, attention_dropout=0.0, attention=AttentionConfig(kind=cfg.attention)), num_labels=2)
    hf_options: dict[str, Any] = {"num_labels": 2}  # a PretrainedConfig kwarg, not a BertConfig one
    hf: nn.Module = BertForSequenceClassification(BertConfig(
        vocab_size=cfg.vocab_size, hidden_size=d_model, num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
        intermediate_size=d_ff, max_position_embeddings=cfg.seq_len, type_vocab_size=2, hidden_act="gelu",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, **hf_options))
    return {"attnlab": ours.to(device).train(), "hf_bert": hf.to(device).train()}


def make_train_step(name: str, model: nn.Module, batch: dict[str, Tensor], lr: float,
                    losses: list[Tensor] | None = None) -> Callable[[], None]:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = model(*args).logits if name == "hf_bert" else model(*args)  # (B, 2)
        loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        opt.step()
        if losses is not None:
            losses.append(loss.detach())  # the loss curve, compared eager vs compiled (no sync here)

    return step


def make_matmul(n: int, reps: int, device: torch.device) -> tuple[Callable[[], None], float]:
    """A loop of `reps` (n × n) @ (n × n) fp32 matmuls and its FLOPs."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)

    def run() -> None:
        for _ in range(reps):
            torch.mm(a, b, out=c)

    return run, 2.0 * n**3 * reps


def bench_size(d_model: int, cfg: TrainBenchConfig, device: torch.device, log: Log) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    models = build_models(d_model, cfg, device)
    b, t = cfg.batch, cfg.seq_len
    batch = {"input_ids": torch.randint(5, cfg.vocab_size, (b, t), device=device),  # (B, T)
             "attention_mask": torch.ones(b, t, dtype=torch.long, device=device),  # (B, T), no padding
             "token_type_ids": torch.zeros(b, t, dtype=torch.long, device=device),
             "labels": torch.randint(0, 2, (b,), device=device)}
    matmul, mm_flops = make_matmul(cfg.matmul_size, cfg.matmul_reps, device)
    compile_s = None
    if cfg.compile:  # the same weights, compiled as `train.compile: true` compiles them
        from attnlab.train.fit import compile_model

        models["attnlab_compiled"] = copy.deepcopy(models["attnlab"])
        compile_model(models["attnlab_compiled"])
    losses: dict[str, list[Tensor]] = {name: [] for name in models}
    steps = {name: make_train_step(name, m, batch, cfg.lr, losses[name]) for name, m in models.items()}
    if cfg.compile:
        started = time.perf_counter()
        steps["attnlab_compiled"]()  # compiles (its extra step is left out of the loss comparison)
        steps["attnlab"]()
        compile_s = time.perf_counter() - started
        log(f"[train] d_model={d_model:<4d} torch.compile + one step of each: {compile_s:.0f} s")
    other = OtherLoad()
    other.start()
    times = time_rounds({"matmul": matmul, **steps}, cfg.repeats, device, warmup=2)
    other_cores = other.stop()
    tokens = b * t
    row: dict[str, Any] = {"d_model": d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
                           "d_ff": cfg.d_ff_mult * d_model, "seq_len": t, "batch": b, "rounds": cfg.repeats,
                           "matmul_gflops": mm_flops / median(times["matmul"]) / 1e9,
                           "matmul_gflops_best": mm_flops / min(times["matmul"]) / 1e9,
                           "other_cpu_cores": other_cores}
    for name, m in models.items():
        n_lin = linear_weights(m)
        flops = model_flops(n_lin, cfg.n_layers, t, d_model, tokens)
        step_s = median(times[name])
        row[name] = {"params": sum(p.numel() for p in m.parameters()), "linear_weights": n_lin,
                     "step_ms": 1000 * step_s, "steps_ms": [1000 * s for s in times[name]],
                     "tokens_per_s": tokens / step_s, "gflops_per_step": flops / 1e9,
                     "achieved_gflops": flops / step_s / 1e9,
                     "mfu": flops / mm_flops * paired_ratio(times["matmul"], times[name])}
        log(f"[train] d_model={d_model:<4d} {name:<8} {tokens / step_s:10,.0f} tokens/s  step {1000 * step_s:8.1f} ms  "
            f"MFU {100 * row[name]['mfu']:5.1f}% of {row['matmul_gflops']:.0f} GFLOP/s matmul")
    row["attnlab/hf_bert tokens_per_s"] = paired_ratio(times["hf_bert"], times["attnlab"])
    if cfg.compile:
        eager, comp = (torch.stack(losses[n]).tolist() for n in ("attnlab", "attnlab_compiled"))
        row["compiled/eager tokens_per_s"] = paired_ratio(times["attnlab"], times["attnlab_compiled"])
        row["compile_s"] = compile_s
        row["loss_curve"] = {"eager": eager, "compiled": comp}
        row["loss_max_rel_diff"] = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(eager, comp))
    return row


def _profile_size(d_model: int, cfg: TrainBenchConfig, device: torch.device) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    models = build_models(d_model, cfg, device)
    b, t = cfg.batch, cfg.seq_len
    batch = {"input_ids": torch.randint(5, cfg.vocab_size, (b, t), device=device),
             "attention_mask": torch.ones(b, t, dtype=torch.long, device=device),
             "token_type_ids": torch.zeros(b, t, dtype=torch.long, device=device),
             "labels": torch.randint(0, 2, (b,), device=device)}
    return {name: top_ops(make_train_step(name, m, batch, cfg.lr), n=8) for name, m in models.items()}


def matmul_share(ops: list[dict[str, Any]]) -> float:
    return sum(o["share"] for o in ops if o["op"] in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
               or "scaled_dot_product" in o["op"])


def throughput_targets(sizes: list[dict[str, Any]], cfg: TrainBenchConfig, device: torch.device,
                       threads: int) -> list[dict[str, Any]]:
    goal = "attnlab full-model training ≥ 1.0× HF BERT tokens/s (every size)"
    worst = min(sizes, key=lambda r: r["attnlab/hf_bert tokens_per_s"])
    ratio = worst["attnlab/hf_bert tokens_per_s"]
    per = ", ".join(f"d_model {r['d_model']}: {r['attnlab/hf_bert tokens_per_s']:.3f}×" for r in sizes)
    speed = target("train_vs_hf_bert", goal, ratio, ratio >= 1.0, f"worst d_model={worst['d_model']}; {per}"
                   + contention_note(worst.get("other_cpu_cores"), threads))
    eligible = [r for r in sizes if r["d_model"] >= MFU_MIN_D_MODEL]
    note = "" if eligible else f" (no size with d_model ≥ {MFU_MIN_D_MODEL}: judged at the largest)"
    judged = min(eligible or [max(sizes, key=lambda r: r["d_model"])], key=lambda r: r["attnlab"]["mfu"])
    mfu = judged["attnlab"]["mfu"]
    mfu_t = target("mfu", f"CPU MFU ≥ {MFU_TARGET:.0%} of measured fp32 matmul peak at d_model ≥ {MFU_MIN_D_MODEL}",
                   mfu, mfu >= MFU_TARGET, f"attnlab at d_model={judged['d_model']}{note}; HF BERT "
                   f"{100 * judged['hf_bert']['mfu']:.1f}%; peak {judged['matmul_gflops']:.0f} GFLOP/s (median)"
                   + contention_note(judged.get("other_cpu_cores"), threads))
    for tg, d in ((speed, worst["d_model"]), (mfu_t, judged["d_model"])):
        if tg["status"] == "MISS":
            tg["profile"] = _profile_size(d, cfg, device)
            tg["detail"] += "; profile of one step: " + "; ".join(
                f"{n}: matmul ops {100 * matmul_share(ops):.0f}% of self time, top {format_ops(ops[:4])}"
                for n, ops in tg["profile"].items())
    return [speed, mfu_t, *compile_targets(sizes, threads)]


def compile_targets(sizes: list[dict[str, Any]], threads: int) -> list[dict[str, Any]]:
    speed_goal = f"train.compile (torch.compile) ≥ {COMPILE_SPEEDUP}× eager training tokens/s at d_model ≥ {MFU_MIN_D_MODEL}"
    loss_goal = f"compiled loss curve = eager's (max relative difference ≤ {LOSS_RTOL:g})"
    timed = [r for r in sizes if "compiled/eager tokens_per_s" in r]
    if not timed:
        return [target("compile_speedup", speed_goal, None, None, "not run (--no-compile)"),
                target("compile_loss_match", loss_goal, None, None, "not run (--no-compile)")]
    judged = min([r for r in timed if r["d_model"] >= MFU_MIN_D_MODEL] or timed, key=lambda r: r["d_model"])
    ratio = judged["compiled/eager tokens_per_s"]
    per = ", ".join(f"d_model {r['d_model']}: {r['compiled/eager tokens_per_s']:.3f}× (compile {r['compile_s']:.0f} s)"
                    for r in timed)
    worst = max(r["loss_max_rel_diff"] for r in timed)
    steps = min(len(r["loss_curve"]["eager"]) for r in timed)
    return [target("compile_speedup", speed_goal, ratio, ratio >= COMPILE_SPEEDUP,
                   f"judged at d_model={judged['d_model']}; {per}" + contention_note(judged.get("other_cpu_cores"), threads)),
            target("compile_loss_match", loss_goal, worst, worst <= LOSS_RTOL,
                   f"same init, same batch, {steps} AdamW steps each")]


def run_train_bench(cfg: TrainBenchConfig, out_dir: Path | str, log: Log = print) -> dict[str, Any]:
    """Run the benchmark, write train.{json,md} under `out_dir`, return the JSON data."""
    device = pick_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.wait_quiet_s > 0:
        wait_for_quiet(cfg.wait_quiet_s, log)
    started, load_at_start, code_at_start = time.time(), load_average(), model_code_state()
    sizes = [bench_size(d, cfg, device, log) for d in cfg.d_models]
    targets = throughput_targets(sizes, cfg, device, torch.get_num_threads())
    overhead = run_overhead(cfg, log) if cfg.overhead else {"status": "not run (--no-overhead)"}
    targets.append(overhead_target(overhead))
    for tg in targets:
        measured = "n/a" if tg["measured"] is None else f"{tg['measured']:.3g}"
        log(f"[train] target {tg['name']}: {tg['status']} ({measured}) — {tg['goal']}")
    data: dict[str, Any] = {
        "benchmark": "train",
        "command": cfg.command,
        "machine": machine_info(device, load_at_start, code_at_start),
        "config": {k: v for k, v in asdict(cfg).items() if k != "command"},
        "mfu_formula": "MFU = (6·N_linear·tokens + 12·n_layers·T·d_model·tokens) / step_time / matmul_peak, "
                       "per round, median; N_linear = weights of all nn.Linear layers",
        "sizes": sizes,
        "overhead": overhead,
        "targets": targets,
        "wall_time_s": time.time() - started,
    }
    out = Path(out_dir)
    write_json(out / "train.json", data)
    write_train_report(data, out)
    log(f"[train] wrote {out / 'train.json'}, train.md ({data['wall_time_s']:.0f} s)")
    return data
