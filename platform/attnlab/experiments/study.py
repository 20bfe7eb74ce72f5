"""Create/resume a study from a sweep file, run trials in this process, or fan out K workers.

The storage is the experiment database: every trial's full record lives in its user attributes.
Crash safety (recovery.py): trials heartbeat into the storage; a trial whose worker died (SIGKILL, power
loss) goes stale, is marked FAIL with the reason stored and re-queued with the same parameters; Ctrl-C marks
the running trial interrupted and re-queues it. `n_trials` counts trials with an *outcome* (complete, pruned,
or failed for a recorded reason such as a NaN loss), and a worker that has nothing left to start waits for the
trials still running elsewhere (re-queuing them if their worker died), so the command returns with `n_trials`
outcomes and a killed trial redone. Storage outages are waited out (storage.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from attnlab.errors import Interrupted, StorageError
from attnlab.experiments import recovery
from attnlab.experiments.sampling import make_sampler
from attnlab.experiments.storage import DEFAULT_RETRY_S, normalize_url, open_storage
from attnlab.experiments.sweep_config import SweepConfig
from attnlab.paths import check_name, results_dir

__all__ = ["default_storage", "finished_count", "load_or_create", "make_pruner", "make_sampler", "normalize_url",
           "open_storage", "run_worker", "spawn_workers"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def default_storage(name: str, create_dir: bool = True) -> str:
    """sqlite:///<root>/results/sweeps/<name>.db (the name is checked: it cannot point outside that folder)."""
    folder = results_dir() / "sweeps"
    if create_dir:
        folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / (check_name(name, 'study name') + '.db')}"


def make_pruner(cfg: dict[str, Any]) -> optuna.pruners.BasePruner:
    name = cfg.get("name", "none")
    opts = {k: v for k, v in cfg.items() if k != "name"}
    if name == "median":
        return optuna.pruners.MedianPruner(**opts)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**opts)
    return optuna.pruners.NopPruner()


def load_or_create(sweep: SweepConfig, storage_url: str | None = None,
                   retry_s: float = DEFAULT_RETRY_S) -> optuna.Study:
    from attnlab.experiments.space import grid_values

    url = storage_url or sweep.storage or default_storage(sweep.name)
    grid = grid_values(list(sweep.params)) if sweep.sampler.get("name") == "grid" else None
    storage = open_storage(url, sweep.heartbeat_interval_s, sweep.heartbeat_grace_s, retry_s,
                           stale_callback=recovery.on_stale)
    study = optuna.create_study(study_name=sweep.name, storage=storage, directions=sweep.directions,  # type: ignore[arg-type]
                                sampler=make_sampler(sweep.sampler, grid), pruner=make_pruner(sweep.pruner),
                                load_if_exists=True)
    study.set_user_attr("sweep_file", str(sweep.path))
    study.set_user_attr("objectives", [o.metric for o in sweep.objectives])
    return study


COMMANDS_ATTR = "commands"  # study user attr: the commands that produced its trials, in first-use order


def note_command(study: optuna.Study, command: str) -> None:
    """Remember the command that runs trials of `study` (a report rebuilt later shows it, not its own)."""
    commands = [str(c) for c in study.user_attrs.get(COMMANDS_ATTR) or []]
    if command not in commands:
        study.set_user_attr(COMMANDS_ATTR, [*commands, command])


def producing_commands(study: optuna.Study) -> list[str]:
    return [str(c) for c in study.user_attrs.get(COMMANDS_ATTR) or []]


def finished_count(study: optuna.Study) -> int:
    """Trials that reached an outcome: complete, pruned, or failed for a recorded reason (NaN, OOM).
    Dead workers' and interrupted trials are not outcomes: their retries will be."""
    return sum(recovery.is_outcome(t) for t in study.get_trials(deepcopy=False))


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One line per finished trial: number, state, objective value(s), params."""
    values = ", ".join(f"{v:.4g}" for v in trial.values) if trial.values else "—"
    params = " ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                      for k, v in trial.params.items())
    reason = trial.user_attrs.get("fail_reason")
    tail = f"  ({reason})" if reason and trial.state == TrialState.FAIL else ""
    return f"[{study.study_name}] trial {trial.number:>3} {trial.state.name:<8} objective {values}  {params}{tail}"


def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    print(trial_line(study, trial), flush=True)


def run_worker(study: optuna.Study, objective: Any, n_trials: int, catch: tuple[type[Exception], ...],
               verbose: bool = True, grid: bool = False) -> int:
    """Run trials here until the study has `n_trials` outcomes (a grid: until no cell is queued or running);
    returns how many this worker ran. Trials still running in other workers are waited for; a dead worker's
    goes stale and is re-queued here. Ctrl-C / SIGTERM: the running trial is marked interrupted and re-queued,
    then `Interrupted` propagates."""
    ran = 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    current: list[int | None] = [None]

    def tracked(trial: optuna.Trial) -> Any:
        current[0] = trial._trial_id
        return objective(trial)

    wait_s = float(getattr(study._storage, "heartbeat_interval", None) or 5)
    waited = False
    with recovery.interruptible():
        try:
            while True:
                recovery.recover_stale(study)
                trials = study.get_trials(deepcopy=False)
                waiting = sum(t.state == TrialState.WAITING for t in trials)
                running = sum(t.state == TrialState.RUNNING for t in trials)
                if grid:
                    start = waiting > 0
                else:
                    start = sum(recovery.is_outcome(t) for t in trials) + running < n_trials
                if start:
                    current[0] = None
                    try:
                        study.optimize(tracked, n_trials=1, catch=catch, gc_after_trial=True,
                                       callbacks=[print_trial] if verbose else None)
                    except Exception as e:  # optuna's own bookkeeping may mask a storage outage
                        cause = _storage_cause(e)
                        if cause is not None:
                            raise cause from None
                        raise
                    ran += 1
                elif running:  # another worker's trial: it finishes, or goes stale and is redone here
                    if verbose and not waited:
                        grace = getattr(study._storage, "grace_period", None)
                        print(f"[{study.study_name}] waiting for {running} trial(s) running elsewhere (a dead "
                              f"worker's is redone here after {grace} s without a heartbeat)", flush=True)
                    waited = True
                    time.sleep(min(wait_s, 5.0))
                else:
                    break
        except Interrupted as e:
            number = recovery.mark_interrupted(study, current[0], str(e))
            if number is not None:
                print(f"attnlab: trial {number} interrupted and re-queued; rerun the same command to continue",
                      file=sys.stderr, flush=True)
            raise
    return ran


def _storage_cause(e: BaseException) -> StorageError | None:
    """The StorageError behind `e` (optuna's trial runner turns one raised in its `finally` into an
    UnboundLocalError), if any."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, StorageError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


STORAGE_ENV = "ATTNLAB_WORKER_STORAGE"  # the storage URL reaches workers here, never in argv (`ps`, W&B metadata)
EXIT_STORAGE = 75  # EX_TEMPFAIL: the storage stayed unreachable; rerun to resume
EXIT_INTERRUPTED = 130


def spawn_workers(argv: list[str], workers: int, storage: str | None = None, gpus_per_worker: int = 1) -> int:
    """Run `workers` copies of this command (each with --workers 1) and wait; a dead worker is
    reported, never silently ignored, and the others carry on (and redo its trial). On a GPU machine
    worker i sees only its own `gpus_per_worker` devices (`launch.worker_envs`; 0 = every worker sees all)."""
    from attnlab.experiments.launch import worker_envs

    # ATTNLAB_CONCURRENT_WORKERS: each record notes that its throughput was measured on cores shared by K workers
    env = dict(os.environ, ATTNLAB_WORKER="1", ATTNLAB_CONCURRENT_WORKERS=str(workers))
    if storage:
        env[STORAGE_ENV] = storage
    procs: list[subprocess.Popen[bytes]] = []
    with recovery.interruptible():
        try:
            for i, worker_env in enumerate(worker_envs(env, workers, gpus_per_worker)):
                procs.append(subprocess.Popen([sys.executable, "-m", "attnlab.cli", *argv, "--workers", "1"],
                                              env=worker_env))
                time.sleep(0.5 if i == 0 else 0.0)  # first worker creates the study and its tables
            codes = [p.wait() for p in procs]
        except Interrupted as e:
            # A terminal's Ctrl-C reached the workers too (one process group): let them mark and re-queue their
            # trials. A SIGTERM (or a signal sent to this process alone) is passed on.
            for attempt in range(3):
                if attempt or str(e) != "SIGINT":
                    for p in procs:
                        if p.poll() is None:
                            p.send_signal(signal.SIGTERM if attempt < 2 else signal.SIGKILL)
                for p in procs:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(timeout=30)
            raise
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if any(c == EXIT_STORAGE for _, c in bad):
        return EXIT_STORAGE  # each worker named the storage; the caller says how to resume
    for i, c in bad:
        print(f"attnlab: worker {i} exited with code {c}; its finished trials are kept and its running trial "
              "is redone by the other workers (or by the next run of the same command).", file=sys.stderr)
    return 1 if bad else 0
