"""Nothing lost, nothing repeated: dead workers' trials and interrupted trials are redone, exactly once.

- A worker killed mid-trial (SIGKILL, power loss) leaves its trial RUNNING; its heartbeat goes stale after
  `grace_s`. `recover_stale` records why on the trial ("stale (worker gone)"), marks it FAIL and enqueues
  a retry with the same parameters (only the worker whose FAIL transition succeeded enqueues).
- Ctrl-C / SIGTERM raise `Interrupted` in the worker; `mark_interrupted` stores `interrupted` on the running
  trial (so it is not an outcome like a NaN loss), marks it FAIL and enqueues its retry, which the next run
  picks up first. A second Ctrl-C exits at once.
- Retries carry `retry_of` (the trial they redo) and `retry_reason`, so `sweep status` can say what happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from attnlab.errors import Interrupted

STALE_ATTR = "stale"
INTERRUPTED_ATTR = "interrupted"
RETRY_OF = "retry_of"
RETRY_REASON = "retry_reason"
STALE_REASON = "stale (worker gone)"


def enqueue_retry(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """A WAITING copy of `trial` (same parameters, and the grid cell it ran) that the next free worker runs
    first. Its system attributes are those of optuna's RetryFailedTrialCallback (`failed_trial`: the first trial
    of the chain), so `RetryFailedTrialCallback.retried_trial_number` finds the origin."""
    system = {"failed_trial": trial.number, "retry_history": [], **trial.system_attrs}
    system["retry_history"] = [*system["retry_history"], trial.number]
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=trial.params,
                                        distributions=trial.distributions, system_attrs=system,
                                        user_attrs={RETRY_OF: trial.number, RETRY_REASON: reason}))


def on_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Heartbeat-stale callback (optuna calls it for each stale trial it failed): re-queue the trial."""
    enqueue_retry(study, trial, trial.user_attrs.get(STALE_ATTR, STALE_REASON))


def recover_stale(study: optuna.Study) -> list[int]:
    """Fail every RUNNING trial whose heartbeat is stale, with the reason stored, and re-queue it."""
    storage: Any = study._storage  # a heartbeat storage (checked below)
    interval = _heartbeat_interval(storage)
    if interval is None:
        return []
    grace = getattr(storage, "grace_period", None) or 2 * interval
    redone = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        reason = f"{STALE_REASON}: no heartbeat for over {grace} s"
        try:
            storage.set_trial_user_attr(trial_id, STALE_ATTR, reason)
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another worker got there first: it re-queues
        trial = storage.get_trial(trial_id)
        enqueue_retry(study, trial, reason)
        redone.append(trial.number)
    return redone


def _heartbeat_interval(storage: Any) -> int | None:
    from optuna.storages._heartbeat import BaseHeartbeat

    return storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None


def stale_trial_numbers(study: optuna.Study) -> set[int]:
    """RUNNING trials whose heartbeat is stale (read-only: for `sweep status`)."""
    storage: Any = study._storage
    if _heartbeat_interval(storage) is None:
        return set()
    ids = set(storage._get_stale_trial_ids(study._study_id))
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t._trial_id in ids}


def mark_interrupted(study: optuna.Study, trial_id: int | None, why: str) -> int | None:
    """The trial this worker was running: `interrupted` stored, FAIL, retry enqueued. Returns its number."""
    if trial_id is None:
        return None
    storage = study._storage
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, why)
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        trial = storage.get_trial(trial_id)
    if trial.state == TrialState.FAIL and not is_outcome(trial) and trial.number not in retried(study):
        enqueue_retry(study, trial, f"interrupted ({why})")
        return trial.number
    return None


def retried(study: optuna.Study) -> set[int]:
    return {int(t.user_attrs[RETRY_OF]) for t in study.get_trials(deepcopy=False) if RETRY_OF in t.user_attrs}


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Interrupted trials whose retry was never enqueued (a second Ctrl-C, an old study): enqueue them now."""
    done = retried(study)
    todo = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if INTERRUPTED_ATTR in t.user_attrs and t.number not in done]
    for t in todo:
        enqueue_retry(study, t, f"interrupted ({t.user_attrs[INTERRUPTED_ATTR]})")
    return [t.number for t in todo]


def is_outcome(trial: FrozenTrial) -> bool:
    """Finished for a reason that a rerun would repeat (complete, pruned, NaN loss, OOM) — not a dead worker,
    not an interruption."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT/SIGTERM raise `Interrupted` (first time); a second signal exits at once (code 130)."""
    if os.environ.get("ATTNLAB_NO_SIGNALS") or not _main_thread():
        yield
        return
    state = {"hit": False}

    def handler(signum: int, frame: FrameType | None) -> None:
        if state["hit"]:
            os._exit(130)
        state["hit"] = True
        name = signal.Signals(signum).name
        print(f"\nattnlab: {name}: stopping; the running trial is marked interrupted and re-queued "
              "(press Ctrl-C again to exit at once)", file=sys.stderr, flush=True)
        raise Interrupted(name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def describe(trial: FrozenTrial, retries: dict[int, Any]) -> str | None:
    """Why a FAIL trial failed, for status lines: stale, interrupted, or the recorded reason."""
    if STALE_ATTR in trial.user_attrs:
        return str(trial.user_attrs[STALE_ATTR])
    if INTERRUPTED_ATTR in trial.user_attrs:
        return f"interrupted ({trial.user_attrs[INTERRUPTED_ATTR]})"
    if "fail_reason" in trial.user_attrs:
        return str(trial.user_attrs["fail_reason"])
    if trial.number in retries:
        return str(retries[trial.number])
    return None
