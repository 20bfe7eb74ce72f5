"""Several worker processes on one study; a worker killed with SIGKILL mid-trial loses nothing.

The PostgreSQL test needs a server: `.ci/run` starts one and exports ATTNLAB_TEST_PG_URL.
The same scenario runs on SQLite everywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from attnlab.experiments.study import normalize_url

REPO = Path(__file__).resolve().parents[2]


def sweep_file(tmp_path: Path, data_root: Path, name: str, n_trials: int) -> Path:
    doc = {
        "name": name, "base": str(REPO / "sweeps/base/sst2.yaml"),
        "set": {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
                "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 256,
                "task.max_eval_examples": 64, "train.batch_size": 16, "train.max_steps": 60,
                "task.data_root": str(data_root)},
        "objectives": [{"metric": "val/accuracy"}],
        "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "n_trials": n_trials,
        "heartbeat": {"interval_s": 1, "grace_s": 4},
    }
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def worker(path: Path, storage: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "platform"))
    return subprocess.Popen([sys.executable, "-m", "attnlab.cli", "sweep", str(path), "--storage", storage,
                             "--wandb", "off"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_one_mid_trial(path: Path, storage: str, name: str, tmp_path: Path, n_trials: int) -> None:
    a, b = worker(path, storage, tmp_path), worker(path, storage, tmp_path)
    deadline = time.time() + 240
    # wait until at least one trial finished and another is running, then SIGKILL worker a
    while time.time() < deadline:
        time.sleep(1.0)
        try:
            trials = optuna.load_study(study_name=name, storage=normalize_url(storage)).get_trials(deepcopy=False)
        except KeyError:
            continue
        if any(t.state == TrialState.COMPLETE for t in trials) and any(t.state == TrialState.RUNNING for t in trials):
            break
    finished_before = {t.number for t in trials if t.state == TrialState.COMPLETE}
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    assert b.wait(timeout=max(10, deadline - time.time())) == 0
    # rerun once more (as a user would): finishes whatever is missing
    again = worker(path, storage, tmp_path)
    assert again.wait(timeout=240) == 0
    study = optuna.load_study(study_name=name, storage=normalize_url(storage))
    trials = study.get_trials(deepcopy=False)
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    assert finished_before <= complete, "a finished trial was lost"
    assert len(complete) >= n_trials
    assert not any(t.state == TrialState.RUNNING for t in trials), "a dead worker's trial stayed RUNNING"
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert "records" in t.user_attrs


@pytest.mark.slow
def test_two_workers_sqlite_sigkill(data_root: Path, tmp_path: Path) -> None:
    path = sweep_file(tmp_path, data_root, "kill-sqlite", 4)
    kill_one_mid_trial(path, f"sqlite:///{tmp_path / 's.db'}", "kill-sqlite", tmp_path, 4)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_postgres_sigkill(data_root: Path, tmp_path: Path) -> None:
    url = os.environ.get("ATTNLAB_TEST_PG_URL")
    if not url:
        pytest.skip("no PostgreSQL server: set ATTNLAB_TEST_PG_URL (.ci/run starts one)")
    name = f"kill-pg-{os.getpid()}-{int(time.time())}"
    path = sweep_file(tmp_path, data_root, name, 4)
    kill_one_mid_trial(path, url, name, tmp_path, 4)
