"""`attnlab bench attention|train|gpu` arguments → benchmark configs. No measuring logic here.

Wired into the main CLI with `add_parser(subparsers)` + `run(args)`; also runnable on its own as
`python -m attnlab.bench attention|train|gpu ...`. `--tiny` swaps every default for a test-size one
(explicit options still win). The command recorded in the results restates every option, so it
regenerates the run whatever the defaults later become.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

DEFAULT_OUT = "results/bench"
ATTENTION_DEFAULTS: dict[str, Any] = {"lengths": [128, 256, 512, 1024, 2048, 4096], "batch": 2, "d_model": 256,
                                      "heads": 4, "repeats": 5, "decode_steps": 16}
ATTENTION_TINY: dict[str, Any] = {"lengths": [16, 32, 64], "batch": 2, "d_model": 32, "heads": 4, "repeats": 2,
                                  "decode_steps": 4}
TRAIN_DEFAULTS: dict[str, Any] = {"d_model": [256, 128], "layers": 4, "heads": 4, "seq_len": 128, "batch": 32,
                                  "vocab": 8000, "repeats": 8, "matmul_size": 2048, "trial_steps": 0,
                                  "overhead_repeats": 2}
TRAIN_TINY: dict[str, Any] = {"d_model": [32], "layers": 1, "heads": 2, "seq_len": 16, "batch": 4, "vocab": 500,
                              "repeats": 2, "matmul_size": 256, "trial_steps": 3, "overhead_repeats": 1}
GPU_DEFAULTS: dict[str, Any] = {"d_model": 768, "layers": 12, "heads": 12, "seq_len": 1024, "batch": 8, "vocab": 32000,
                                "train_steps": 20, "warmup_steps": 3, "lengths": [1024, 4096, 16384], "layer_batch": 4,
                                "decode_lengths": [1024, 8192], "decode_steps": 32}
GPU_TINY: dict[str, Any] = {"d_model": 32, "layers": 1, "heads": 2, "seq_len": 32, "batch": 2, "vocab": 500,
                            "train_steps": 2, "warmup_steps": 1, "lengths": [32, 64], "layer_batch": 1,
                            "decode_lengths": [16], "decode_steps": 2}
LONG_LENGTH = 8192


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `bench` (with sub-commands `attention` and `train`) to the main CLI's subparsers."""
    bench = subparsers.add_parser("bench", help="benchmarks: attention variants vs references; training cost")
    bench.set_defaults(bench_prog="attnlab bench")
    add_bench_commands(bench)
    return bench  # type: ignore[no-any-return]


def add_bench_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_command", required=True)
    at = sub.add_parser("attention", help="fwd+bwd time and peak memory per attention variant vs T; decoding")
    at.add_argument("--lengths", type=int, nargs="+", help="sequence lengths (default 128 256 ... 4096)")
    at.add_argument("--long", action="store_true", help=f"also T={LONG_LENGTH}")
    at.add_argument("--batch", type=int, help=_sized("batch size", "batch", ATTENTION_DEFAULTS, ATTENTION_TINY))
    at.add_argument("--d-model", type=int, help=_sized("model width", "d_model", ATTENTION_DEFAULTS, ATTENTION_TINY))
    at.add_argument("--heads", type=int, help=_sized("attention heads", "heads", ATTENTION_DEFAULTS, ATTENTION_TINY))
    at.add_argument("--repeats", type=int, help="timed interleaved rounds per length (default 5)")
    at.add_argument("--variants", nargs="+", help="registered variants to run (default: all)")
    at.add_argument("--memory-budget-gib", type=float, default=8.0, help="skip layers whose T×T tensors need more")
    at.add_argument("--max-call-s", type=float, default=1.5,
                    help="beyond T=4096 only: skip non-core layers projected slower than this per fwd+bwd call")
    at.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    at.add_argument("--decode-steps", type=int, help="tokens timed per decoding round (default 16)")
    at.add_argument("--decode-threads", type=int, default=1, help="intra-op threads while decoding (default 1)")
    _common(at)
    tr = sub.add_parser("train", help="training tokens/s vs HF BERT, MFU, platform overhead vs a bare loop")
    tr.add_argument("--d-model", type=int, nargs="+", help="model widths (default 256 128)")
    for flag, what in SIZE_FLAGS.items():
        if flag in ("layers", "heads", "seq-len", "batch", "vocab"):
            key = flag.replace("-", "_")
            tr.add_argument(f"--{flag}", type=int, help=_sized(what, key, TRAIN_DEFAULTS, TRAIN_TINY))
    tr.add_argument("--repeats", type=int, help="timed interleaved rounds (default 8)")
    tr.add_argument("--matmul-size", type=int, help="n of the n×n fp32 matmul peak loop (default 2048)")
    tr.add_argument("--attention", default="dot", help="attention variant of the attnlab model (default dot)")
    tr.add_argument("--no-overhead", action="store_true", help="skip the platform-overhead trial")
    tr.add_argument("--trial-seconds", type=float, default=65.0, help="training time the overhead trial aims at")
    tr.add_argument("--trial-steps", type=int, help="fix the overhead trial's steps (0: calibrate to --trial-seconds)")
    tr.add_argument("--overhead-repeats", type=int, help="runs per side, ordered ABBA (default 2)")
    tr.add_argument("--data-root", help="GLUE data root (default $ATTNLAB_DATA, else ../shared/data)")
    tr.add_argument("--no-compile", action="store_true", help="skip the torch.compile (train.compile) comparison")
    _common(tr)
    gp = sub.add_parser("gpu", help="one GPU: bf16 training MFU, dot vs flash, linear vs fla kernels, decoding")
    for flag in ("d-model", "layers", "heads", "seq-len", "batch", "vocab", "train-steps", "warmup-steps",
                 "layer-batch", "decode-steps"):
        gp.add_argument(f"--{flag}", type=int, help=_sized(SIZE_FLAGS[flag], flag.replace("-", "_"), GPU_DEFAULTS,
                                                           GPU_TINY))
    gp.add_argument("--lengths", type=int, nargs="+", help="attention-layer lengths (default 1024 4096 16384)")
    gp.add_argument("--decode-lengths", type=int, nargs="+", help="decoding context lengths (default 1024 8192)")
    gp.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"], help="training and layer dtype")
    gp.add_argument("--peak-tflops", type=float, default=0.0, help="device peak for MFU (0: data-sheet lookup)")
    gp.add_argument("--budget-s", type=float, default=420.0, help="start no new measurement after this")
    _common(gp)


SIZE_FLAGS = {"d-model": "model width", "layers": "layers", "heads": "attention heads", "seq-len": "sequence length",
              "batch": "batch size", "vocab": "vocabulary size", "train-steps": "timed training steps",
              "warmup-steps": "untimed warm-up steps", "layer-batch": "batch of the attention-layer timing",
              "decode-steps": "tokens timed per decoding round"}


def _sized(what: str, key: str, defaults: dict[str, Any], tiny: dict[str, Any]) -> str:
    return f"{what} (default {defaults[key]}; --tiny: {tiny[key]})"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--tiny", action="store_true", help="test-size run (T ≤ 64, a few steps)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (0: torch's default). 1 keeps ratios sane on a machine other "
                        "jobs keep busy: multi-thread OpenMP regions stall whenever a core is taken")
    p.add_argument("--seed", type=int, default=0, help="random seed of the inputs and weights")
    p.add_argument("--wait-quiet-s", type=float, default=0.0,
                   help="first wait up to this long for other processes to use < 0.5 cores (shared machines)")


def _resolve(args: argparse.Namespace, defaults: dict[str, Any], tiny: dict[str, Any]) -> dict[str, Any]:
    base = tiny if args.tiny else defaults
    return {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}


def _flags(values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            out += [flag, *map(str, value)]
        elif value is not None:
            out += [flag, str(value)]
    return out


def attention_config(args: argparse.Namespace) -> Any:
    from attnlab.bench.config import AttentionBenchConfig

    v = _resolve(args, ATTENTION_DEFAULTS, ATTENTION_TINY)
    lengths = sorted(set(v["lengths"]) | ({LONG_LENGTH} if args.long else set()))
    flags = {"lengths": lengths, "batch": v["batch"], "d_model": v["d_model"], "heads": v["heads"],
             "repeats": v["repeats"], "variants": args.variants, "memory_budget_gib": args.memory_budget_gib,
             "max_call_s": args.max_call_s, "no_memory": args.no_memory, "decode_steps": v["decode_steps"],
             "decode_threads": args.decode_threads, "device": args.device, "threads": args.threads,
             "seed": args.seed,
             "wait_quiet_s": args.wait_quiet_s, "out": args.out}
    command = " ".join([getattr(args, "bench_prog", "attnlab bench"), "attention", shlex.join(_flags(flags))])
    return AttentionBenchConfig(
        lengths=tuple(lengths), batch=v["batch"], d_model=v["d_model"], n_heads=v["heads"], repeats=v["repeats"],
        min_repeats=min(3, v["repeats"]), variants=tuple(args.variants or ()),
        memory_budget_gib=args.memory_budget_gib, max_call_s=args.max_call_s, measure_memory=not args.no_memory,
        decode_steps=v["decode_steps"], decode_threads=args.decode_threads, device=args.device,
        threads=args.threads, seed=args.seed,
        wait_quiet_s=args.wait_quiet_s, command=command)


def train_config(args: argparse.Namespace) -> Any:
    from attnlab.bench.config import TrainBenchConfig

    v = _resolve(args, TRAIN_DEFAULTS, TRAIN_TINY)
    flags = {"d_model": v["d_model"], "layers": v["layers"], "heads": v["heads"], "seq_len": v["seq_len"],
             "batch": v["batch"], "vocab": v["vocab"], "repeats": v["repeats"], "matmul_size": v["matmul_size"],
             "attention": args.attention, "no_overhead": args.no_overhead, "trial_seconds": args.trial_seconds,
             "trial_steps": v["trial_steps"], "overhead_repeats": v["overhead_repeats"], "data_root": args.data_root,
             "no_compile": args.no_compile,
             "tiny": args.tiny, "device": args.device, "threads": args.threads, "seed": args.seed,
             "wait_quiet_s": args.wait_quiet_s,
             "out": args.out}
    command = " ".join([getattr(args, "bench_prog", "attnlab bench"), "train", shlex.join(_flags(flags))])
    return TrainBenchConfig(
        d_models=tuple(v["d_model"]), n_layers=v["layers"], n_heads=v["heads"], seq_len=v["seq_len"],
        batch=v["batch"], vocab_size=v["vocab"], repeats=v["repeats"], attention=args.attention,
        matmul_size=v["matmul_size"], compile=not args.no_compile, overhead=not args.no_overhead,
        trial_seconds=args.trial_seconds,
        trial_steps=v["trial_steps"], overhead_repeats=v["overhead_repeats"], overhead_tiny=args.tiny,
        data_root=args.data_root, device=args.device, threads=args.threads, seed=args.seed,
        wait_quiet_s=args.wait_quiet_s,
        command=command)


def gpu_config(args: argparse.Namespace) -> Any:
    from attnlab.bench.config import GpuBenchConfig

    v = _resolve(args, GPU_DEFAULTS, GPU_TINY)
    flags = {**v, "dtype": args.dtype, "peak_tflops": args.peak_tflops, "budget_s": args.budget_s, "tiny": args.tiny,
             "device": args.device, "threads": args.threads, "seed": args.seed, "out": args.out}
    command = " ".join([getattr(args, "bench_prog", "attnlab bench"), "gpu", shlex.join(_flags(flags))])
    return GpuBenchConfig(
        d_model=v["d_model"], n_layers=v["layers"], n_heads=v["heads"], seq_len=v["seq_len"], batch=v["batch"],
        vocab_size=v["vocab"], train_steps=v["train_steps"], warmup_steps=v["warmup_steps"],
        lengths=tuple(v["lengths"]), layer_batch=v["layer_batch"], decode_lengths=tuple(v["decode_lengths"]),
        decode_steps=v["decode_steps"], dtype=args.dtype, peak_tflops=args.peak_tflops, budget_s=args.budget_s,
        device=args.device, threads=args.threads, seed=args.seed, command=command)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark; results go to `args.out`. Returns the exit code (0)."""
    if args.bench_command == "attention":
        from attnlab.bench.attention import run_attention_bench

        run_attention_bench(attention_config(args), args.out)
    elif args.bench_command == "gpu":
        from attnlab.bench.gpu import run_gpu_bench

        run_gpu_bench(gpu_config(args), args.out)
    else:
        from attnlab.bench.train import run_train_bench

        run_train_bench(train_config(args), args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnlab.bench", description="attnlab benchmarks")
    parser.set_defaults(bench_prog="python -m attnlab.bench")
    add_bench_commands(parser)
    return run(parser.parse_args(argv))
