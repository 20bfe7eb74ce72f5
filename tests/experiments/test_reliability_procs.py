"""Reliability with real processes, signals and a real PostgreSQL server (all `slow`): the figures of the
README's "Reliability" section are measured here.

- kill -9 of 1 of 2 workers → the survivor returns with n_trials distinct complete configurations, the killed
  trial's configuration among them (test_kill9_one_of_two_workers_study_completes).
- Ctrl-C during a reproduction → exit 130, the cell marked interrupted and re-queued; the rerun completes the
  grid (test_ctrl_c_then_rerun_completes_the_grid); a second Ctrl-C exits at once.
- PostgreSQL stopped for 30 s mid-sweep → the sweep waits and finishes; with a short --storage-retry-s it stops
  with one line naming the storage (password masked) and the rerun resumes, 0 finished trials lost; the
  password appears in 0 output files (test_postgres_outage_*).

The PostgreSQL tests start a private server (they must stop and restart it), so they need `initdb`
(/usr/lib/postgresql/*/bin); without it they skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from attnlab.experiments.study import normalize_url

REPO = Path(__file__).resolve().parents[2]
SECRET = "Pg-s3cret-0xF00D"
TINY = {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
        "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 256, "task.max_eval_examples": 64,
        "train.batch_size": 16}


def sweep_file(tmp_path: Path, data_root: Path, name: str, n_trials: int, max_steps: int = 60) -> Path:
    doc = {"name": name, "base": str(REPO / "sweeps/base/sst2.yaml"),
           "set": {**TINY, "train.max_steps": max_steps, "task.data_root": str(data_root)},
           "objectives": [{"metric": "val/accuracy"}],
           "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                     "model.attention.kind": ["dot", "linear"]},
           "sampler": {"name": "random", "seed": 0}, "n_trials": n_trials,
           "heartbeat": {"interval_s": 1, "grace_s": 4}}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def attnlab(tmp_path: Path, *argv: str, log: str = "out") -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "platform"))
    out = open(tmp_path / f"{log}.log", "ab")  # noqa: SIM115 (the child owns it)
    return subprocess.Popen([sys.executable, "-m", "attnlab.cli", *argv], cwd=tmp_path, env=env, stdout=out,
                            stderr=subprocess.STDOUT)


def trials_of(name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=normalize_url(storage)).get_trials(deepcopy=False)
    except (KeyError, Exception):
        return []


def wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def one_done_one_running(name: str, storage: str) -> bool:
    trials = trials_of(name, storage)
    return any(t.state == TrialState.COMPLETE for t in trials) and any(t.state == TrialState.RUNNING for t in trials)


# ---- kill -9 ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill9_one_of_two_workers_study_completes(data_root: Path, tmp_path: Path) -> None:
    n = 4
    path = sweep_file(tmp_path, data_root, "kill9", n)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    a = attnlab(tmp_path, "sweep", str(path), "--storage", storage, "--wandb", "off", "--no-report", log="a")
    b = attnlab(tmp_path, "sweep", str(path), "--storage", storage, "--wandb", "off", "--no-report", log="b")
    wait_for(lambda: one_done_one_running("kill9", storage), 300, "a finished and a running trial")
    killed = [t for t in trials_of("kill9", storage) if t.state == TrialState.RUNNING]
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    assert b.wait(timeout=400) == 0  # no rerun: the survivor redoes the killed trial before it returns
    trials = trials_of("kill9", storage)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    configs = {tuple(sorted(t.params.items())) for t in complete}
    assert len(complete) == n and len(configs) == n, "n_trials distinct complete configurations"
    assert not any(t.state == TrialState.RUNNING for t in trials)
    for dead in killed:
        if any(t.number == dead.number and t.state == TrialState.COMPLETE for t in trials):
            continue  # that one was b's trial, which finished
        assert tuple(sorted(dead.params.items())) in configs, "the killed trial was not redone"
        assert trials[dead.number].user_attrs.get("stale", "").startswith("stale (worker gone)")


# ---- Ctrl-C ---------------------------------------------------------------------------------------
def ablation_file(tmp_path: Path, data_root: Path) -> Path:
    doc = {"name": "ctrlc", "title": "Ctrl-C", "base": str(REPO / "sweeps/base/sst2.yaml"),
           "set": {**TINY, "train.max_steps": 80, "task.data_root": str(data_root)},
           "rows": {"dot": {}, "linear": {"model.attention.kind": "linear"}}, "tasks": ["glue/sst2"], "seeds": [0, 1]}
    p = tmp_path / "ctrlc.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.slow
def test_ctrl_c_then_rerun_completes_the_grid(data_root: Path, tmp_path: Path) -> None:
    path = ablation_file(tmp_path, data_root)
    storage = f"sqlite:///{tmp_path / 'grid.db'}"
    args = ("reproduce", str(path), "--storage", storage, "--wandb", "off", "--out", str(tmp_path / "report"))
    proc = attnlab(tmp_path, *args, log="first")
    wait_for(lambda: one_done_one_running("ctrlc-default", storage), 300, "a finished and a running cell")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    trials = trials_of("ctrlc-default", storage)
    (hit,) = [t for t in trials if "interrupted" in t.user_attrs]
    assert hit.state == TrialState.FAIL and "fail_reason" not in hit.user_attrs
    assert any(t.state == TrialState.WAITING and t.params == hit.params for t in trials), "not re-queued"
    assert not any(t.state == TrialState.RUNNING for t in trials), "a stale RUNNING trial was left"
    assert "re-queued" in (tmp_path / "first.log").read_text()
    rerun = attnlab(tmp_path, *args, log="rerun")
    assert rerun.wait(timeout=600) == 0
    log = (tmp_path / "rerun.log").read_text()
    assert "4/4 cells finished" in log, log[-2000:]
    cells = {(t.params["row"], t.params["seed"]) for t in trials_of("ctrlc-default", storage)
             if t.state == TrialState.COMPLETE}
    assert len(cells) == 4


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once(data_root: Path, tmp_path: Path) -> None:
    path = sweep_file(tmp_path, data_root, "twice", 3, max_steps=400)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    proc = attnlab(tmp_path, "sweep", str(path), "--storage", storage, "--wandb", "off", log="twice")
    wait_for(lambda: any(t.state == TrialState.RUNNING for t in trials_of("twice", storage)), 300, "a running trial")
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    started = time.time()
    assert proc.wait(timeout=30) == 130
    assert time.time() - started < 10


# ---- PostgreSQL outage ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """A throwaway server this test may stop and restart (trust auth: the password in the URL is only there to
    be kept secret)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.skip("no initdb: install PostgreSQL (the outage test starts its own server)")
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="attnlab-pg-"))
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")
        self.start()
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "optuna"],
                       check=True, capture_output=True)
        self.url = f"postgresql://postgres:{SECRET}@127.0.0.1:{self.port}/optuna"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    if shutil.which("runuser") is None and os.geteuid() == 0:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    pg = PrivatePostgres()
    try:
        yield pg
    finally:
        pg.close()


def files_with_secret(*roots: Path) -> list[Path]:
    hits = []
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and SECRET.encode() in p.read_bytes():
                hits.append(p)
    return hits


def outage(pg: PrivatePostgres, name: str, after_complete: int, down_s: float) -> None:
    wait_for(lambda: sum(t.state == TrialState.COMPLETE for t in trials_of(name, pg.url)) >= after_complete, 300,
             f"{after_complete} complete trial(s)")
    pg.stop()
    time.sleep(down_s)
    pg.start()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_outage_30s_sweep_waits_and_finishes(private_pg: PrivatePostgres, data_root: Path,
                                                      tmp_path: Path) -> None:
    path = sweep_file(tmp_path, data_root, "pgdown", 4)
    out = tmp_path / "report"
    proc = attnlab(tmp_path, "sweep", str(path), "--storage", private_pg.url, "--workers", "2", "--wandb", "offline",
                   "--out", str(out), log="pgdown")
    outage(private_pg, "pgdown", 1, 30)
    assert proc.wait(timeout=600) == 0
    log = (tmp_path / "pgdown.log").read_text()
    assert "unreachable" in log and "is back" in log and "Traceback" not in log, log[-3000:]
    complete = [t for t in trials_of("pgdown", private_pg.url) if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and len({tuple(sorted(t.params.items())) for t in complete}) == 4
    assert (out / "leaderboard.md").is_file()
    assert files_with_secret(tmp_path, Path(os.environ["WANDB_DIR"]), Path(os.environ["ATTNLAB_RESULTS"])) == []
    assert SECRET not in log


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_outage_beyond_the_retry_budget_stops_cleanly_and_resumes(private_pg: PrivatePostgres,
                                                                           data_root: Path, tmp_path: Path) -> None:
    path = sweep_file(tmp_path, data_root, "pgstop", 4)
    args = ("sweep", str(path), "--storage", private_pg.url, "--wandb", "offline", "--out", str(tmp_path / "report"))
    proc = attnlab(tmp_path, *args, "--storage-retry-s", "5", log="stop")
    wait_for(lambda: sum(t.state == TrialState.COMPLETE for t in trials_of("pgstop", private_pg.url)) >= 1, 300,
             "a complete trial")
    private_pg.stop()
    assert proc.wait(timeout=120) == 75
    log = (tmp_path / "stop.log").read_text()
    assert "Traceback" not in log and SECRET not in log, log[-3000:]
    lines = [line for line in log.splitlines() if "stayed unreachable" in line or "unreachable for" in line]
    assert len(lines) == 1 and f"postgres:***@127.0.0.1:{private_pg.port}" in lines[0]
    assert "rerun the same command" in lines[0]
    private_pg.start()
    before = {t.number for t in trials_of("pgstop", private_pg.url) if t.state == TrialState.COMPLETE}
    assert before
    again = attnlab(tmp_path, *args, log="again")
    assert again.wait(timeout=600) == 0
    trials = trials_of("pgstop", private_pg.url)
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    assert before <= complete and len(complete) == 4, "a finished trial was lost"
    assert files_with_secret(tmp_path, Path(os.environ["WANDB_DIR"]), Path(os.environ["ATTNLAB_RESULTS"])) == []
    status = subprocess.run([sys.executable, "-m", "attnlab.cli", "sweep", "status", "pgstop", "--storage",
                             private_pg.url], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO / "platform")))
    assert status.returncode == 0 and "COMPLETE=4" in status.stdout and SECRET not in status.stdout + status.stderr
