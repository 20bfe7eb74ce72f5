"""What a run records about how it ran (threads, determinism, versions, git state, workers) and its per-run
peak memory; a rerun with the same recorded settings gives identical metrics."""

from __future__ import annotations

import importlib.metadata
import resource
import time
import warnings
from pathlib import Path

import pytest
import torch

from attnlab.config import ConfigError, load_run_config
from attnlab.model.flops import flops_per_token
from attnlab.train.provenance import WORKERS_ENV, PeakMemory, pinned_run, resident_mib
from attnlab.train.runner import train_run

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=64", "model.max_len=32",
        "task.max_length=32", "task.vocab_size=500", "train.batch_size=16", "train.max_steps=3",
        "task.max_train_examples=200", "task.max_eval_examples=64"]


def tiny_cfg(data_root: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_run_config(REPO / "sweeps/base/sst2.yaml", [*TINY, f"task.data_root={data_root}", *extra])


def test_record_carries_run_settings(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "3")
    before = torch.get_num_threads()
    record = train_run(tiny_cfg(data_root, "train.num_threads=2"), progress=False)
    assert record.threads == 2 and record.interop_threads is not None and record.interop_threads >= 1
    assert record.deterministic is True and record.nondeterministic_ops == []
    assert {"python", "torch", "pytorch_lightning", "optuna", "numpy"} <= set(record.library_versions)
    assert record.library_versions["torch"] == importlib.metadata.version("torch")
    assert record.git_dirty in (True, False)  # this test runs from a checkout
    assert record.concurrent_workers == 3
    assert record.cost.flops_per_token == flops_per_token(tiny_cfg(data_root).model, 32)
    # the process's own settings are restored after the run
    assert torch.get_num_threads() == before and not torch.are_deterministic_algorithms_enabled()


def test_num_threads_is_validated(data_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.num_threads"):
        tiny_cfg(data_root, "train.num_threads=0")


def test_rerun_in_one_process_is_bit_identical(data_root: Path) -> None:
    """Same recorded settings → identical metrics (exact), even with other work in between."""
    first = train_run(tiny_cfg(data_root, "train.num_threads=1"), progress=False)
    torch.randn(1000).sum()  # consume the global RNG between the runs: the run must seed its own
    second = train_run(tiny_cfg(data_root, "train.num_threads=1"), progress=False)
    assert first.metrics == second.metrics and first.metrics
    assert first.curves == second.curves


def test_peak_memory_is_per_run_not_lifetime(data_root: Path) -> None:
    """Two identical runs in one process record similar peaks: the second is not the first's peak plus its own
    (the lifetime max RSS rose with trial order), and neither is the process's whole resident size."""
    first = train_run(tiny_cfg(data_root), progress=False)
    second = train_run(tiny_cfg(data_root), progress=False)
    lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in (first, second):
        assert r.cost.peak_mem_baseline_mib is not None and r.cost.peak_mem_baseline_mib > 0
        assert 0 <= r.cost.peak_mem_mib < lifetime / 2  # an increase over the baseline, not the process's RSS
    assert second.cost.peak_mem_mib <= first.cost.peak_mem_mib + 32, (first.cost, second.cost)


@pytest.mark.skipif(resident_mib() is None, reason="needs /proc/self/statm")
def test_peak_memory_sampler_sees_an_allocation_and_forgets_it() -> None:
    with PeakMemory(interval_s=0.005) as big:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.2)  # held long enough for the 5 ms sampler to run even on a loaded machine
        del x
    with PeakMemory(interval_s=0.005) as small:
        y = torch.ones(8 * 2**20 // 4)  # 8 MiB
        time.sleep(0.2)
        del y
    big_peak, base = big.result(torch.device("cpu"))
    small_peak, _ = small.result(torch.device("cpu"))
    assert base is not None and base > 0
    assert big_peak >= 60
    assert small_peak < 40  # the 64 MiB of the earlier block do not count here


def test_pinned_run_lists_ops_without_a_deterministic_kernel(data_root: Path) -> None:
    cfg = tiny_cfg(data_root)
    with pytest.warns(UserWarning, match="deterministic"), pinned_run(cfg.train) as run:  # shown, and recorded
        warnings.warn("scatter_add_cuda_kernel does not have a deterministic implementation, but you set ...",
                      UserWarning, stacklevel=1)
    assert run.deterministic and run.threads == cfg.train.num_threads
    assert run.nondeterministic_ops == ["scatter_add_cuda_kernel"]
