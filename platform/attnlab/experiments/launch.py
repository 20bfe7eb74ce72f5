"""Where a study's workers run: this machine's GPUs (one group per worker), or a cluster through submitit.

A worker is always the same command, `attnlab sweep FILE --workers 1 --no-report` (or `reproduce`), joining the
study through the shared storage; a launcher only decides where K of them start.

- `worker_devices`: `--workers K` on a GPU machine pins worker i to its own `--gpus-per-worker` devices
  (`CUDA_VISIBLE_DEVICES`, round-robin over disjoint groups of the GPUs this process sees).
- `submit_workers`: `--launcher slurm` submits K workers as one SLURM job array (submitit's AutoExecutor);
  `--launcher local` runs the same submission through submitit's LocalExecutor on this machine (tests, CI).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from attnlab.errors import ConfigError

GPU_COUNT_ENV = "ATTNLAB_GPU_COUNT"  # overrides torch.cuda.device_count() (tests; machines torch cannot see)
LAUNCHERS = ("processes", "local", "slurm")


def gpu_count() -> int:
    if os.environ.get(GPU_COUNT_ENV):
        return int(os.environ[GPU_COUNT_ENV])
    import torch

    return torch.cuda.device_count()


def worker_devices(worker: int, gpus_per_worker: int, count: int, visible: str | None = None) -> str | None:
    """`CUDA_VISIBLE_DEVICES` for worker `worker`: the GPUs (of the `count` this process sees, named as in
    `visible`, the parent's own CUDA_VISIBLE_DEVICES) cut into disjoint groups of `gpus_per_worker`, dealt
    round-robin. None (inherit) without GPUs or with `gpus_per_worker` 0."""
    if count == 0 or gpus_per_worker == 0:
        return None
    if gpus_per_worker > count:
        raise ConfigError(f"--gpus-per-worker: {gpus_per_worker} GPUs per worker, but this machine has {count}")
    names = [n.strip() for n in visible.split(",")] if visible else [str(i) for i in range(count)]
    group = worker % (count // gpus_per_worker)
    return ",".join(names[group * gpus_per_worker:(group + 1) * gpus_per_worker])


def worker_envs(base: Mapping[str, str], workers: int, gpus_per_worker: int = 1,
                count: int | None = None) -> list[dict[str, str]]:
    """One environment per worker, each pinned to its GPU group (see `worker_devices`)."""
    count = gpu_count() if count is None else count
    groups = count // gpus_per_worker if count and gpus_per_worker else 0
    if groups and workers > groups:
        warnings.warn(f"{workers} workers share {groups} GPU group(s) of {gpus_per_worker}: some GPUs run two "
                      "workers", stacklevel=2)
    envs = []
    for i in range(workers):
        env = dict(base)
        devices = worker_devices(i, gpus_per_worker, count, base.get("CUDA_VISIBLE_DEVICES"))
        if devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = devices
        envs.append(env)
    return envs


# ---- submitit ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaunchOptions:
    """`--launcher` and its options (the cluster ones apply to slurm only)."""

    launcher: str = "processes"  # processes (this machine) | local (submitit, this machine) | slurm
    gpus_per_worker: int = 1
    partition: str | None = None
    time_min: int = 24 * 60  # wall-clock limit of each worker job
    cpus_per_worker: int = 4
    mem_gb: int | None = None
    wait: bool = True  # wait for the jobs (then the report is written), or return once they are submitted


def run_worker_command(argv: list[str]) -> int:
    """The job: one worker process, exactly as `--workers K` starts it on this machine."""
    env = dict(os.environ, ATTNLAB_WORKER="1")
    code = subprocess.run([sys.executable, "-m", "attnlab.cli", *argv, "--workers", "1"], env=env).returncode
    if code != 0:
        raise RuntimeError(f"attnlab worker exited with code {code}")
    return code


def check_storage(launcher: str, url: str) -> None:
    if launcher == "slurm" and not url.startswith(("postgresql", "postgres://", "mysql")):
        raise ConfigError(f"--launcher slurm: the study storage {url.split('://', 1)[0]}://… is a file; workers on "
                          "different nodes would share it over a network filesystem, whose locking SQLite cannot "
                          "rely on (locked or corrupted database). Start PostgreSQL and pass "
                          "--storage postgresql://USER:PASSWORD@HOST/DB (pip install 'attnlab[postgres]')")


@contextlib.contextmanager
def _exported(name: str, value: str) -> Iterator[None]:
    """Set an environment variable while jobs are submitted: sbatch and the local executor pass the
    submitting environment on, so a storage password never lands in a pickled job file."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def start_workers(argv: list[str], workers: int, *, storage: str, folder: Path, options: LaunchOptions,
                  job_name: str = "attnlab") -> int:
    """K workers of `attnlab <argv> --workers 1` on the study in `storage`: processes here, or submitit jobs."""
    from attnlab.experiments.study import spawn_workers

    if options.launcher == "processes":
        return spawn_workers(argv, workers, storage=storage, gpus_per_worker=options.gpus_per_worker)
    return submit_workers(argv, workers, storage=storage, folder=folder, options=options, job_name=job_name)


def submit_workers(argv: list[str], workers: int, *, storage: str, folder: Path, options: LaunchOptions,
                   job_name: str = "attnlab") -> int:
    """Submit `workers` jobs of `attnlab <argv> --workers 1`; wait for them (unless `options.wait` is False)."""
    from attnlab.experiments.study import STORAGE_ENV

    launcher = options.launcher
    check_storage(launcher, storage)
    try:
        import submitit
    except ImportError:
        raise ConfigError(f"--launcher {launcher} needs submitit: pip install 'attnlab[cluster]'") from None
    executor: submitit.Executor
    if launcher == "slurm":
        executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
        params: dict[str, object] = {"timeout_min": options.time_min, "gpus_per_node": options.gpus_per_worker,
                                     "cpus_per_task": options.cpus_per_worker, "tasks_per_node": 1, "nodes": 1,
                                     "name": job_name, "slurm_array_parallelism": workers}
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.mem_gb:
            params["mem_gb"] = options.mem_gb
        executor.update_parameters(**params)
    elif launcher == "local":
        executor = submitit.LocalExecutor(folder=str(folder / "%j"))
        executor.update_parameters(timeout_min=options.time_min)
    else:
        raise ConfigError(f"--launcher: unknown {launcher!r}; valid: {', '.join(LAUNCHERS)}")
    with _exported(STORAGE_ENV, storage), executor.batch():
        jobs = [executor.submit(run_worker_command, list(argv)) for _ in range(workers)]
    print(f"submitted {workers} worker job(s) ({launcher}): {', '.join(str(j.job_id) for j in jobs)}; "
          f"logs in {folder}", flush=True)
    if not options.wait:
        return 0
    bad = 0
    for i, job in enumerate(jobs):
        try:
            job.result()
        except Exception as e:  # a failed job is reported; the study keeps every finished trial
            bad += 1
            print(f"worker job {i} ({job.job_id}) failed: {str(e).strip().splitlines()[-1] if str(e).strip() else e}",
                  file=sys.stderr)
    return 1 if bad else 0
