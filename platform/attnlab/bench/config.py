"""The benchmark configs and the small types every benchmark module shares. The lowest module of
`attnlab.bench` (it imports nothing from it), so the measuring modules depend on it and never on
each other's entry points — which is what kept attention ↔ attention_targets ↔ decode and
train ↔ overhead in import cycles before."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Log = Callable[[str], None]
DEFAULT_LENGTHS = (128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class LayerShape:
    batch: int
    d_model: int
    n_heads: int

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_heads


@dataclass(frozen=True)
class AttentionBenchConfig:
    lengths: tuple[int, ...] = DEFAULT_LENGTHS
    batch: int = 2
    d_model: int = 256
    n_heads: int = 4
    repeats: int = 5  # timed rounds per length (fewer when one round exceeds length_budget_s / repeats)
    min_repeats: int = 3
    length_budget_s: float = 40.0
    variants: tuple[str, ...] = ()  # () → every registered variant
    memory_budget_gib: float = 8.0  # skip layers whose T×T tensors would need more
    max_call_s: float = 1.5  # beyond the targets' lengths, skip layers projected slower than this per call
    measure_memory: bool = True
    decode_lengths: tuple[int, ...] = ()  # () → lengths
    decode_steps: int = 16  # tokens timed per call
    decode_rounds: int = 7
    decode_threads: int = 1  # intra-op threads while decoding (µs-sized ops; see decode.py)
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 → torch's default (one per core)
    wait_quiet_s: float = 0.0  # first wait up to this long for other processes to go quiet
    seed: int = 0
    command: str = ""  # the command line that reproduces this run (recorded, not used)

    @property
    def shape(self) -> LayerShape:
        return LayerShape(self.batch, self.d_model, self.n_heads)

    def validate(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not self.lengths or min(self.lengths) < 1 or self.batch < 1 or self.repeats < 1:
            raise ValueError("lengths, batch and repeats must be positive")


@dataclass(frozen=True)
class TrainBenchConfig:
    d_models: tuple[int, ...] = (256, 128)
    n_layers: int = 4
    n_heads: int = 4
    d_ff_mult: int = 4
    seq_len: int = 128
    batch: int = 32
    vocab_size: int = 8000
    repeats: int = 8
    attention: str = "dot"
    matmul_size: int = 2048
    matmul_reps: int = 3  # matmuls per timed call of the peak loop
    lr: float = 1e-4
    compile: bool = True  # also time the attnlab model under torch.compile (the `train.compile` option)
    overhead: bool = True
    trial_seconds: float = 65.0  # target length of the overhead trial's training (≥ 60 s)
    trial_steps: int = 0  # 0 → calibrated from a short bare run to last trial_seconds
    overhead_repeats: int = 2  # runs of each side, ordered bare, platform, platform, bare (ABBA)
    overhead_tiny: bool = False  # tiny model and data slice (tests)
    data_root: str | None = None
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 → torch's default (one per core)
    wait_quiet_s: float = 0.0  # first wait up to this long for other processes to go quiet
    seed: int = 0
    command: str = ""


@dataclass(frozen=True)
class GpuBenchConfig:
    """`attnlab bench gpu`: sized to finish in ≤ 8 minutes on one GPU (`--tiny`: seconds on a CPU)."""

    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    seq_len: int = 1024
    batch: int = 8
    vocab_size: int = 32000
    train_steps: int = 20  # timed steps per model (after warm-up)
    warmup_steps: int = 3
    lengths: tuple[int, ...] = (1024, 4096, 16384)  # attention-layer lengths (fwd+bwd)
    layer_batch: int = 4
    decode_lengths: tuple[int, ...] = (1024, 8192)
    decode_steps: int = 32
    dtype: str = "bf16"  # bf16 | fp32 (fp32 on CPU: bf16 matmuls there are not what a GPU run measures)
    peak_tflops: float = 0.0  # 0 → look the device up (`gpu.PEAK_TFLOPS`) or measure a matmul
    budget_s: float = 420.0  # stop starting new measurements after this (the whole run ≤ 8 min)
    device: str = "auto"
    threads: int = 0  # torch intra-op threads on a CPU; 0 → torch's default
    seed: int = 0
    command: str = ""
