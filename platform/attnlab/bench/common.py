"""What every benchmark shares: machine facts, interleaved timing, peak memory, profiling, targets.

Timing on a shared 2-core VM jitters 2–3×, so variants are never timed one after another: each
round times every variant once (the order rotates between rounds), and a variant's figure is the
median over rounds. A ratio between two variants is the median of their per-round ratios, so a
slow patch of the machine hits both sides of the ratio alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[3]


# ---- machine and provenance -----------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> tuple[str, bool]:
    """(short commit, whether tracked files differ from it) — others edit this tree concurrently."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    try:
        return git("rev-parse", "--short=12", "HEAD") or "unknown", bool(git("status", "--porcelain", "-uno"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


MODEL_CODE = ("platform/attnlab/attention", "platform/attnlab/model", "platform/attnlab/config.py")


def model_code_state() -> dict[str, Any]:
    """Content hash of the model code being measured, and whether it differs from the commit:
    the tree is edited while benchmarks run, so the commit alone does not say what was timed."""
    files = sorted(p for part in MODEL_CODE for p in ((REPO_ROOT / part).rglob("*.py") if (REPO_ROOT / part).is_dir()
                                                      else [REPO_ROOT / part]) if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", *MODEL_CODE], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        dirty: bool | None = bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"paths": list(MODEL_CODE), "sha256": digest.hexdigest()[:16], "differs_from_commit": dirty}


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_average() -> list[float]:
    """1/5/15-minute load averages: other work on a shared machine shows up here (2 cores: 2 = full)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine_info(device: torch.device, load_at_start: list[float] | None = None,
                 code_at_start: dict[str, Any] | None = None) -> dict[str, Any]:
    """Machine and provenance; `code_at_start` = `model_code_state()` taken when the run began
    (a mismatch with the state at the end means the model code changed during the run)."""
    commit, dirty = git_state()
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": package_version("transformers"),
        "attnlab_commit": commit,
        "worktree_dirty": dirty,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average": {"start": load_at_start or [], "end": load_average()},
        "model_code": code_at_start or model_code_state(),
    }
    if code_at_start is not None and code_at_start["sha256"] != model_code_state()["sha256"]:
        info["model_code"]["changed_during_run"] = True
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- other load on the machine ---------------------------------------------------------------
def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process incl. its threads) from /proc."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # everything but idle and iowait (guest is in user)
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return busy, int(own[11]) + int(own[12])  # utime + stime


class OtherLoad:
    """Average number of cores other processes kept busy between `start()` and `stop()`: on a
    shared machine this says how far a block's timings can be trusted (0 = quiet)."""

    def __init__(self) -> None:
        self._start: tuple[float, int, int] | None = None

    def start(self) -> None:
        try:
            self._start = (time.monotonic(), *_cpu_ticks())
        except (OSError, ValueError, IndexError):
            self._start = None

    def stop(self) -> float | None:
        if self._start is None:
            return None
        t0, busy0, own0 = self._start
        busy1, own1 = _cpu_ticks()
        seconds = time.monotonic() - t0
        ticks = os.sysconf("SC_CLK_TCK")
        return round(max(0.0, (busy1 - busy0) - (own1 - own0)) / ticks / max(seconds, 1e-9), 2)


def wait_for_quiet(max_wait_s: float, log: Callable[[str], None], threshold_cores: float = 0.5,
                   sample_s: float = 5.0) -> float | None:
    """Wait (at most `max_wait_s`) until other processes use < `threshold_cores`; returns the last
    sample. The benchmark runs either way: this only improves the odds of a quiet machine."""
    waited, load = 0.0, None
    while True:
        probe = OtherLoad()
        probe.start()
        time.sleep(sample_s)
        load = probe.stop()
        if load is None or load < threshold_cores or waited + sample_s > max_wait_s:
            return load
        if waited == 0:
            log(f"[bench] other processes use {load} cores; waiting up to {max_wait_s:.0f} s for a quieter machine")
        waited += sample_s


# ---- interleaved timing ---------------------------------------------------------------------
def time_rounds(fns: Mapping[str, Callable[[], object]], rounds: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each fn: `warmup` untimed rounds, then `rounds` timed rounds, each
    calling every fn once in an order rotated by one per round."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of per-round ratios num[r] / den[r] (rounds line up: both were timed in round r)."""
    return median([a / b for a, b in zip(num, den) if b > 0])


# ---- peak memory ------------------------------------------------------------------------------
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def rss_peak_supported() -> bool:
    return CLEAR_REFS.exists() and os.access(CLEAR_REFS, os.W_OK)


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory `fn` adds on top of what is already allocated, in MiB.

    CUDA: torch.cuda.max_memory_allocated. CPU: the process's resident-set high-water mark
    (VmHWM), reset to the current RSS just before `fn` by writing 5 to /proc/self/clear_refs
    (Linux ≥ 4.0). Only exact when freed memory goes back to the OS at once: the caller runs in a
    process started with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set (see `memory.py`).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    base_kib = _status_kib("VmRSS")
    CLEAR_REFS.write_text("5")
    fn()
    return max(0, _status_kib("VmHWM") - base_kib) / 1024


# ---- profiling (the measured reason behind a missed target) ---------------------------------
def top_ops(fn: Callable[[], object], n: int = 6) -> list[dict[str, Any]]:
    """One profiled call of `fn`: the `n` ops with the most self time, with their share."""
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm: first calls allocate and pick kernels
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1000, 3),
             "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in events[:n]]


def format_ops(ops: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{o['op']} {100 * o['share']:.0f}% ({o['calls']} calls)" for o in ops)


# ---- targets ----------------------------------------------------------------------------------
def target(name: str, goal: str, measured: float | None, passed: bool | None, detail: str = "") -> dict[str, Any]:
    """One reported target: PASS / MISS, or N/A when it could not be measured (reason in detail)."""
    status = "N/A" if passed is None or measured is None else ("PASS" if passed else "MISS")
    return {"name": name, "goal": goal, "measured": measured, "status": status, "detail": detail}


def contention_note(other_cores: float | None, threads: int) -> str:
    """A caveat for a target judged on timings taken while other processes needed the cores that
    this run's `threads` wanted (oversubscribed: other + threads > cores)."""
    if other_cores is None or other_cores + threads <= (os.cpu_count() or 1) + 0.25:
        return ""
    return (f"; CAUTION: timed while other processes kept {other_cores:g} cores busy (shared machine; "
            "layers made of many small ops suffer most): rerun on a quiet machine (--wait-quiet-s)")


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
