"""How a run ran, recorded with its Record: pinned CPU threads, deterministic algorithms, library versions, git
state, the workers sharing the machine, and the run's own peak memory.

`pinned_run(train_cfg)` wraps one fit: it pins torch's thread count to `train.num_threads` (never derived from
the machine or from `--workers`, so the same settings give the same floating-point reduction order anywhere),
turns on torch's deterministic algorithms (`train.deterministic`; an op without a deterministic kernel warns and
is listed in the record instead of failing the run), measures peak memory for this run alone, and restores the
process's settings afterwards (a worker runs many trials; tests run many fits).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import importlib.metadata
import os
import platform
import subprocess
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import torch

from attnlab.config import TrainConfig
from attnlab.paths import in_checkout
from attnlab.record import Record

REPO_ROOT = Path(__file__).resolve().parents[3]
LIBRARIES = ("torch", "pytorch_lightning", "optuna", "numpy", "scipy", "tokenizers")
WORKERS_ENV = "ATTNLAB_CONCURRENT_WORKERS"  # set by `spawn_workers` (--workers K) in every worker it starts
NONDETERMINISTIC = " does not have a deterministic implementation"  # torch's alert, after the op's name
MIB = 2**20


def library_versions() -> dict[str, str]:
    """python, the libraries whose numerics or data order a result depends on, and the CUDA/cuDNN builds."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        with suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    if torch.version.cuda:
        out["cuda"] = str(torch.version.cuda)
        if torch.backends.cudnn.is_available():
            out["cudnn"] = str(torch.backends.cudnn.version())
    return out


def git_dirty() -> bool | None:
    """True when a tracked file outside results/ differs from HEAD (code or configs the commit does not
    describe); None outside a git checkout. Results files are excluded: writing a report must not make the
    next trial of the same run look dirty."""
    if not in_checkout():
        return None
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def concurrent_workers() -> int:
    """How many worker processes share this machine (`--workers K` sets it in each): throughput measured with
    more than one is measured on shared cores."""
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1


def resident_mib() -> float | None:
    """This process's anonymous resident memory now (Linux /proc/self/statm: resident − file-backed pages), or
    None where it cannot be read. Anonymous memory is what a run allocates (tensors, Python objects); file-backed
    pages are mostly shared-library code that the first run in a process maps while importing."""
    try:
        with open("/proc/self/statm") as fh:
            fields = fh.read().split()
        return (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError, IndexError):
        return None


def release_free_memory() -> None:
    """Collect garbage and return the C heap's free pages to the OS (glibc `malloc_trim`; a no-op elsewhere), so
    the resident size counts memory in use, not memory an earlier run freed."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory of what runs inside, as the increase over the memory in use when it started.

    CPU: a daemon thread samples the resident set size every `interval_s` (a spike shorter than that can be
    missed); GPU: torch's allocated-memory peak counter, reset on entry. So a run's figure no longer depends on
    what ran before it in the same process (the lifetime peak RSS did: it rose with trial order)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.rss_base: float | None = None
        self.rss_peak: float | None = None
        self.cuda_base: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = resident_mib()
        if now is not None and (self.rss_peak is None or now > self.rss_peak):
            self.rss_peak = now

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakMemory:
        release_free_memory()  # else the run reuses freed heap pages already counted in the baseline, unseen
        self.rss_base = self.rss_peak = resident_mib()
        if self.rss_base is not None:
            self._thread = threading.Thread(target=self._run, name="attnlab-peak-memory", daemon=True)
            self._thread.start()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self._reset_cuda()
        return self

    def _reset_cuda(self) -> None:
        torch.cuda.reset_peak_memory_stats()
        self.cuda_base = torch.cuda.memory_allocated() / MIB

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def result(self, device: torch.device) -> tuple[float, float | None]:
        """(peak increase in MiB, baseline in MiB); the baseline is None when only a lifetime peak exists."""
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / MIB
            base = self.cuda_base or 0.0  # CUDA first touched inside the run: nothing was allocated before
            return peak - base, base
        if self.rss_base is None or self.rss_peak is None:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, None  # no /proc: lifetime peak
        return self.rss_peak - self.rss_base, self.rss_base


@dataclasses.dataclass
class PinnedRun:
    """What `pinned_run` observed; `complete` writes it into the run's record."""

    memory: PeakMemory
    threads: int = 0
    interop_threads: int = 0
    deterministic: bool = False
    nondeterministic_ops: list[str] = dataclasses.field(default_factory=list)

    def complete(self, record: Record, device: torch.device, flops_per_token: float | None,
                 vocabulary_hash: str | None = None) -> Record:
        peak, base = self.memory.result(device)
        cost = dataclasses.replace(record.cost, peak_mem_mib=peak, peak_mem_baseline_mib=base,
                                   flops_per_token=flops_per_token)
        return dataclasses.replace(
            record, cost=cost, threads=self.threads, interop_threads=self.interop_threads,
            deterministic=self.deterministic, nondeterministic_ops=sorted(set(self.nondeterministic_ops)),
            library_versions=library_versions(), git_dirty=git_dirty(), concurrent_workers=concurrent_workers(),
            vocabulary_hash=vocabulary_hash)


@contextmanager
def pinned_run(train: TrainConfig) -> Iterator[PinnedRun]:
    """Pin threads and determinism for one fit and measure its memory; the process's settings are restored."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
    torch.set_num_threads(train.num_threads)
    with suppress(RuntimeError):  # allowed once per process, before any inter-op work: later runs keep the first
        torch.set_num_interop_threads(train.num_threads)
    if train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    run = PinnedRun(PeakMemory())
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught, run.memory:
            yield run
            run.threads, run.interop_threads = torch.get_num_threads(), torch.get_num_interop_threads()
            run.deterministic = torch.are_deterministic_algorithms_enabled()
    finally:
        for w in caught:
            text = str(w.message)
            if NONDETERMINISTIC in text:
                run.nondeterministic_ops.append(text.split(NONDETERMINISTIC)[0].strip())
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)  # shown as they would have been
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        torch.backends.cudnn.benchmark = saved[3]
