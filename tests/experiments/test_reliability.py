"""Reliability of the study engine, in-process and fast (cheap objectives, SQLite): distinct configurations
across workers, a dead worker's trial redone, interrupted trials re-queued, storage outages waited out,
secrets masked. The subprocess/signal/PostgreSQL versions are in test_reliability_procs.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from attnlab.errors import Interrupted, StorageError
from attnlab.experiments import recovery
from attnlab.experiments.sampling import make_sampler
from attnlab.experiments.status import format_status
from attnlab.experiments.storage import Outage, open_storage
from attnlab.experiments.study import finished_count, run_worker
from attnlab.secrets import redact, redact_obj

SECRET = "s3cr3t-Pw"


def space(trial: optuna.Trial) -> tuple[Any, ...]:
    return (trial.suggest_categorical("kind", ["dot", "linear", "synth"]),
            trial.suggest_int("n_layers", 1, 4), trial.suggest_float("lr", 1e-4, 1e-2, log=True))


def open_study(url: str, sampler: dict[str, Any], interval: int = 1, grace: int = 2) -> optuna.Study:
    storage = open_storage(url, interval, grace, retry_s=5, stale_callback=recovery.on_stale)
    return optuna.create_study(study_name="s", storage=storage, sampler=make_sampler(sampler), load_if_exists=True)


@pytest.mark.parametrize(("sampler", "n"), [({"name": "random", "seed": 0}, 8), ({"name": "tpe", "seed": 0}, 12)])
def test_two_workers_and_a_rerun_sample_distinct_configurations(tmp_path: Path, sampler: dict[str, Any],
                                                                 n: int) -> None:
    """Two workers with the file's seed, interleaved trial by trial (the old per-worker seeding gave 6 distinct
    configurations of 8 with the random sampler): every trial distinct, and a rerun does not replay trial 0."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    workers = [open_study(url, sampler), open_study(url, sampler)]
    for i in range(n):
        study = workers[i % 2]
        trial = study.ask()
        space(trial)
        study.tell(trial, float(i))
    configs = [tuple(t.params.values()) for t in workers[0].get_trials()]
    assert len(configs) == n and len(set(configs)) == n, f"{n - len(set(configs))} duplicate configurations"
    rerun = open_study(url, sampler)
    trial = rerun.ask()
    assert space(trial) not in set(configs)


def objective(trial: optuna.Trial) -> float:
    return float(space(trial)[1])


def dead_worker_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """A trial a SIGKILLed worker left behind: RUNNING, one heartbeat, never another."""
    trial = study.ask()
    space(trial)
    study._storage.record_heartbeat(trial._trial_id)
    return study._storage.get_trial(trial._trial_id)


def test_dead_workers_trial_is_redone_before_the_worker_returns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    dead = dead_worker_trial(open_study(url, {"name": "random", "seed": 1}))
    study = open_study(url, {"name": "random", "seed": 1})
    assert "running" in format_status(study)
    deadline = time.monotonic() + 30  # past the grace period its heartbeat is stale (poll: loaded machines lag)
    while f"#{dead.number:<4} stale (worker gone)" not in format_status(study) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert f"#{dead.number:<4} stale (worker gone)" in format_status(study)
    run_worker(study, objective, 3, (), verbose=False)
    trials = study.get_trials()
    assert finished_count(study) == 3
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and dead.params in [t.params for t in complete], "the killed trial was not redone"
    failed = study._storage.get_trial(dead._trial_id)
    assert failed.state == TrialState.FAIL and failed.user_attrs["stale"].startswith("stale (worker gone)")
    status = format_status(study)
    assert f"failed #{dead.number}: stale (worker gone)" in status and "redone as #" in status


def test_worker_waits_for_a_running_trial_instead_of_overshooting(tmp_path: Path) -> None:
    """n_trials counts outcomes: with one trial left and another worker's trial running, a worker starts
    nothing more (it waits until that trial finishes or goes stale)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study(url, {"name": "random", "seed": 2}, interval=1, grace=30)
    run_worker(study, objective, 2, (), verbose=False)
    other = dead_worker_trial(open_study(url, {"name": "random", "seed": 2}, interval=1, grace=30))
    import threading

    threading.Timer(1.5, lambda: study._storage.set_trial_state_values(other._trial_id, TrialState.COMPLETE,
                                                                       [1.0])).start()
    assert run_worker(study, objective, 3, (), verbose=False) == 0
    assert len(study.get_trials()) == 3 and finished_count(study) == 3


def test_interrupted_trial_is_marked_and_requeued_not_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study(url, {"name": "random", "seed": 3})
    seen: list[dict[str, Any]] = []

    def interrupt_second(trial: optuna.Trial) -> float:
        value = objective(trial)
        seen.append(dict(trial.params))
        if len(seen) == 2:
            raise Interrupted("SIGINT")
        return value

    with pytest.raises(Interrupted):
        run_worker(study, interrupt_second, 4, (), verbose=False)
    hit = study.get_trials()[1]
    assert hit.state == TrialState.FAIL and hit.user_attrs["interrupted"] == "SIGINT"
    assert "fail_reason" not in hit.user_attrs and finished_count(study) == 1  # not an outcome
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert queued.params == hit.params and queued.user_attrs["retry_of"] == 1
    run_worker(study, objective, 4, (), verbose=False)  # the rerun runs the retry first
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4 and complete[1].params == hit.params
    assert "failed #1: interrupted (SIGINT); redone as #2" in format_status(study)


def test_interrupt_left_unqueued_is_requeued_on_the_next_run(tmp_path: Path) -> None:
    """A second Ctrl-C may exit before the retry is enqueued: the next run enqueues it, once."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study(url, {"name": "random", "seed": 4})
    trial = study.ask()
    space(trial)
    study._storage.set_trial_user_attr(trial._trial_id, "interrupted", "SIGINT")
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert recovery.requeue_interrupted(study) == [0]
    assert recovery.requeue_interrupted(study) == []
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def flaky(failures: int) -> Any:
    calls = {"n": 0}

    def call() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise optuna.exceptions.StorageInternalError("commit failed") from sqlalchemy.exc.OperationalError(
                "SELECT 1", {}, Exception("connection refused"))
        return "ok"

    return call


def test_outage_is_waited_out_then_reported_once_with_the_password_masked(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://attn:{SECRET}@127.0.0.1:1/optuna"
    assert Outage(url, retry_s=30).call(flaky(2)) == "ok"  # back within the budget: the call succeeds
    err = capsys.readouterr().err
    assert "unreachable" in err and "is back" in err and SECRET not in err
    outage = Outage(url, retry_s=1.2)
    with pytest.raises(StorageError) as info:
        outage.call(flaky(100))
    message = str(info.value)
    assert "attn:***@127.0.0.1:1/optuna" in message and SECRET not in message and "rerun the same command" in message
    with pytest.raises(StorageError):  # later calls fail at once: one deadline per outage
        outage.call(flaky(0))


def test_bad_data_is_not_retried() -> None:
    def bad() -> None:
        raise optuna.exceptions.StorageInternalError("too long") from sqlalchemy.exc.DataError("x", {}, Exception())

    started = time.monotonic()
    with pytest.raises(optuna.exceptions.StorageInternalError):
        Outage("sqlite:///x.db", retry_s=30).call(bad)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("text", "masked"), [
    (f"postgresql://u:{SECRET}@h:5432/db", "postgresql://u:***@h:5432/db"),
    (f"attnlab sweep x.yaml --storage 'postgresql+psycopg2://u:{SECRET}@h/db' --n-trials 2",
     "attnlab sweep x.yaml --storage 'postgresql+psycopg2://u:***@h/db' --n-trials 2"),
    (f"mysql://u:{SECRET}@h/db?x=1", "mysql://u:***@h/db?x=1"),
    (f"https://h/db?password={SECRET}&a=1", "https://h/db?password=***&a=1"),
    ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
])
def test_redact(text: str, masked: str) -> None:
    assert redact(text) == masked
    assert redact_obj({"a": [text, 1], "b": (text,)}) == {"a": [masked, 1], "b": (masked,)}


def test_wandb_run_records_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B stores the run config and sys.argv (metadata): both are masked."""
    from attnlab.tracking import TrackingConfig, start_run

    url = f"postgresql://u:{SECRET}@127.0.0.1/db"
    monkeypatch.setattr(sys, "argv", ["attnlab", "sweep", "x.yaml", "--storage", url])
    run = start_run(TrackingConfig(mode="offline", dir=str(tmp_path)), name="r", group="g", job_type="t", tags=[],
                    config={"storage": url, "command": f"attnlab sweep --storage {url}"})
    assert run.active
    run.summary({"x": 1})
    run.finish()
    files = [p for p in (tmp_path / "wandb").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    leaked = [p for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaked, f"secret in {leaked}"
    assert any(b"u:***@127.0.0.1" in p.read_bytes() for p in files)


def test_status_against_a_dead_server_is_one_line_with_the_password_masked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attnlab.cli import main

    url = f"postgresql://u:{SECRET}@127.0.0.1:1/db"
    assert main(["sweep", "status", "some-study", "--storage", url, "--storage-retry-s", "1"]) == 75
    err = capsys.readouterr().err.strip().splitlines()
    assert SECRET not in "\n".join(err)
    assert err[-1].startswith("attnlab: storage postgresql://u:***@127.0.0.1:1/db unreachable for")
    assert "rerun the same command" in err[-1] and not list(tmp_path.glob("*.db"))
