"""Where workers run: GPU pinning of `--workers K` (a fake GPU count: no GPU here) and the submitit launchers
(`--launcher local` end to end; `--launcher slurm` refuses a SQLite storage)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.experiments import study as study_mod
from attnlab.experiments.launch import GPU_COUNT_ENV, check_storage, worker_devices, worker_envs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("count", "k", "expected"), [
    (4, 1, ["0", "1", "2", "3", "0"]),
    (4, 2, ["0,1", "2,3", "0,1", "2,3", "0,1"]),
    (3, 2, ["0,1", "0,1", "0,1", "0,1", "0,1"]),  # one whole group of two; the third GPU stays idle
    (2, 1, ["0", "1", "0", "1", "0"]),
])
def test_workers_get_their_own_gpus_round_robin(count: int, k: int, expected: list[str]) -> None:
    assert [worker_devices(i, k, count) for i in range(5)] == expected


def test_pinning_respects_the_gpus_this_process_was_given_and_cpu_machines() -> None:
    assert [worker_devices(i, 2, 4, visible="3,5,6,7") for i in range(2)] == ["3,5", "6,7"]
    assert worker_devices(0, 1, 0) is None  # no GPU: inherit
    assert worker_devices(0, 0, 4) is None  # --gpus-per-worker 0: every worker sees all
    with pytest.raises(ConfigError, match="--gpus-per-worker: 3 GPUs per worker, but this machine has 2"):
        worker_devices(0, 3, 2)
    envs = worker_envs({"PATH": "/bin"}, 2, 1, count=0)
    assert all("CUDA_VISIBLE_DEVICES" not in e for e in envs)
    with pytest.warns(UserWarning, match="3 workers share 2 GPU group"):
        worker_envs({}, 3, 1, count=2)


def test_spawned_workers_see_their_own_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """`spawn_workers` as `--workers 3` runs it on a (faked) 4-GPU machine: each worker's environment."""
    seen: list[dict[str, str]] = []

    class FakeWorker:
        def __init__(self, cmd: list[str], env: dict[str, str], **_: Any) -> None:
            seen.append(env)
            self.returncode = 0

        def wait(self, timeout: float | None = None) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setenv(GPU_COUNT_ENV, "4")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(subprocess, "Popen", FakeWorker)
    monkeypatch.setattr(study_mod.time, "sleep", lambda s: None)
    assert study_mod.spawn_workers(["sweep", "x.yaml"], 3, gpus_per_worker=1) == 0
    assert [e["CUDA_VISIBLE_DEVICES"] for e in seen] == ["0", "1", "2"]
    seen.clear()
    assert study_mod.spawn_workers(["sweep", "x.yaml"], 2, gpus_per_worker=2) == 0
    assert [e["CUDA_VISIBLE_DEVICES"] for e in seen] == ["0,1", "2,3"]


def test_slurm_needs_a_shared_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="--launcher slurm: the study storage sqlite://… is a file"):
        check_storage("slurm", "sqlite:///x.db")
    check_storage("slurm", "postgresql://u:p@db/attnlab")
    check_storage("local", "sqlite:///x.db")  # one machine: SQLite is fine
    path = tiny_sweep(tmp_path, Path("/nonexistent"), "slurm-sqlite", 2)
    assert main(["sweep", str(path), "--launcher", "slurm", "--workers", "2", "--wandb", "off"]) == 2
    err = capsys.readouterr().err
    assert "PostgreSQL" in err and "network filesystem" in err


def tiny_sweep(tmp_path: Path, data_root: Path, name: str, n_trials: int, **extra: Any) -> Path:
    doc = {
        "name": name, "base": str(REPO / "sweeps/base/sst2.yaml"),
        "set": {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
                "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 128,
                "task.max_eval_examples": 64, "train.batch_size": 16, "train.max_steps": 6,
                "train.accelerator": "cpu", "task.data_root": str(data_root), **extra},
        "objectives": [{"metric": "val/accuracy"}],
        "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "n_trials": n_trials,
        "heartbeat": {"interval_s": 1, "grace_s": 4},
    }
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.slow
def test_local_launcher_runs_two_jobs_on_one_study(data_root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`--launcher local`: the SLURM path (submitit job array of `sweep --workers 1` commands) on this machine."""
    pytest.importorskip("submitit")  # the `dev` extra installs it (`cluster` extra for users)
    path = tiny_sweep(tmp_path, data_root, "launch-local", 2)
    url = f"sqlite:///{tmp_path / 'local.db'}"
    code = main(["sweep", str(path), "--launcher", "local", "--workers", "2", "--storage", url, "--wandb", "off",
                 "--out", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "submitted 2 worker job(s) (local)" in out
    trials = optuna.load_study(study_name="launch-local", storage=url).get_trials(deepcopy=False)
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 2
    assert all("records" in t.user_attrs for t in trials if t.state == TrialState.COMPLETE)
    jobs = tmp_path / "results" / "sweeps" / "launch-local" / "jobs"
    assert len(list(jobs.glob("*/*_result.pkl"))) == 2  # two submitit jobs ran, each a worker
    assert (tmp_path / "report").is_dir()


def test_slurm_submission_is_one_job_array_of_worker_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """What `--launcher slurm` asks of submitit (a fake executor: no SLURM here)."""
    submitit = pytest.importorskip("submitit")
    from attnlab.experiments.launch import LaunchOptions, run_worker_command, submit_workers
    from attnlab.experiments.study import STORAGE_ENV

    calls: dict[str, Any] = {"submitted": []}

    class FakeJob:
        job_id = "42_0"

        def result(self) -> int:
            return 0

    class FakeExecutor:
        def __init__(self, folder: str, cluster: str) -> None:
            calls.update(folder=folder, cluster=cluster)

        def update_parameters(self, **params: Any) -> None:
            calls["params"] = params

        def batch(self) -> Any:
            return contextlib.nullcontext()

        def submit(self, fn: Any, argv: list[str]) -> FakeJob:
            calls["submitted"].append((fn, argv, os.environ.get(STORAGE_ENV)))
            return FakeJob()

    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    url = "postgresql://u:secret@db/attnlab"
    opts = LaunchOptions(launcher="slurm", gpus_per_worker=2, partition="gpu", time_min=90, mem_gb=32)
    argv = ["sweep", "s.yaml", "--no-report"]
    assert submit_workers(argv, 3, storage=url, folder=tmp_path, options=opts, job_name="zoo") == 0
    assert calls["cluster"] == "slurm" and calls["folder"] == str(tmp_path / "%j")
    assert calls["params"] == {"timeout_min": 90, "gpus_per_node": 2, "cpus_per_task": 4, "tasks_per_node": 1,
                               "nodes": 1, "name": "zoo", "slurm_array_parallelism": 3, "slurm_partition": "gpu",
                               "mem_gb": 32}
    assert calls["submitted"] == [(run_worker_command, argv, url)] * 3  # the URL travels in the environment
    assert STORAGE_ENV not in os.environ  # … only while submitting
    assert "submitted 3 worker job(s) (slurm)" in capsys.readouterr().out
