"""The study storage (the experiment database): URL checks, and an RDB storage that rides out outages.

A database that goes away for a while (PostgreSQL restarted, SQLite locked, network blip) must not cost
a finished trial or a run in flight: every storage call is retried with backoff while the outage lasts,
up to `retry_s` seconds in all (one deadline per outage, shared by every call), then one `StorageError`
names the storage (password masked) and says how to resume. The heartbeat thread never retries: a
missed heartbeat during an outage is harmless, the next one lands when the database is back.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage

from attnlab.errors import ConfigError, StorageError
from attnlab.secrets import redact

DEFAULT_RETRY_S = 120.0
SCHEME = re.compile(r"^(sqlite|postgresql|postgres|mysql)(\+[a-z0-9_]+)?://", re.IGNORECASE)


def check_storage_url(url: Any, where: str = "--storage") -> str:
    """A known scheme, and for SQLite a folder that exists and a file that can be written."""
    if not isinstance(url, str) or not SCHEME.match(url):
        raise ConfigError(f"{where}: {redact(str(url))!r} is not a storage URL; use sqlite:///PATH.db or "
                          "postgresql://USER:PASSWORD@HOST:PORT/DB")
    return url


def sqlite_path(url: str) -> Path | None:
    if not url.lower().startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def check_sqlite_writable(url: str) -> None:
    """One clear line instead of a 100-line SQLAlchemy traceback when the file cannot be written."""
    db = sqlite_path(url)
    if db is None or str(db) in ("", ":memory:"):
        return
    folder = db.parent if str(db.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"storage {url}: folder {folder} does not exist; create it or pass another --storage")
    if db.is_dir():
        raise ConfigError(f"storage {url}: {db} is a directory, not a database file")
    if db.exists() and not os.access(db, os.W_OK):
        raise ConfigError(f"storage {url}: {db} is read-only; make it writable (chmod u+w) or pass another --storage")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"storage {url}: folder {folder} is not writable (SQLite writes a journal beside the "
                          "database); pass another --storage")


def normalize_url(url: str) -> str:
    """`postgresql://…` → the driver that is installed (SQLAlchemy 2.1 defaults to psycopg 3; the
    `postgres` extra ships psycopg2-binary)."""
    if url.startswith(("postgresql://", "postgres://")) and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is None:
            raise ConfigError("PostgreSQL storage needs a driver: pip install 'attnlab[postgres]' (psycopg2-binary)")
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _transient(e: BaseException) -> bool:
    """A lost or refused connection, a locked SQLite file: worth waiting for. Bad data is not."""
    import sqlalchemy.exc as sa

    cause = e.__cause__ if isinstance(e, optuna.exceptions.StorageInternalError) else e
    if isinstance(cause, (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError)):
        return True
    return isinstance(cause, sa.DBAPIError) and bool(cause.connection_invalidated)


class Outage:
    """The retry budget of one storage: the first failure starts the clock, a success stops it."""

    def __init__(self, url: str, retry_s: float) -> None:
        self.url, self.retry_s = redact(url), retry_s
        self.since: float | None = None
        self.last_failure: float | None = None  # any failed call, heartbeats included
        self.gave_up: StorageError | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.gave_up is not None:
            raise self.gave_up
        delay, attempt = 0.5, 0
        while True:
            try:
                result = fn(*args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                if attempt and getattr(getattr(fn, "func", fn), "__name__", "") == "set_trial_state_values":
                    return True  # our earlier attempt committed before the connection dropped
                raise
            except Exception as e:
                if not _transient(e):
                    raise
                self._failed(e)
                time.sleep(delay)
                delay, attempt = min(delay * 2, 10.0), attempt + 1
                continue
            if self.since is not None:
                with self._lock:
                    if self.since is not None:
                        print(f"attnlab: storage {self.url} is back after {time.monotonic() - self.since:.0f} s",
                              file=sys.stderr, flush=True)
                        self.since = None
            return result

    def failed_within(self, seconds: float) -> bool:
        return self.last_failure is not None and time.monotonic() - self.last_failure < seconds

    def _failed(self, e: BaseException) -> None:
        cause = e.__cause__ or e
        first = (str(cause).strip().splitlines() or [""])[0][:200]
        with self._lock:
            now = time.monotonic()
            self.last_failure = now
            if self.since is None:
                self.since = now
                print(f"attnlab: storage {self.url} unreachable ({type(cause).__name__}: {redact(first)}); "
                      f"retrying for up to {self.retry_s:.0f} s", file=sys.stderr, flush=True)
            if now - self.since >= self.retry_s:
                self.gave_up = StorageError(
                    f"storage {self.url} unreachable for {now - self.since:.0f} s ({type(cause).__name__}: "
                    f"{redact(first)}). Every finished trial is safe in it; when it is back, rerun the same "
                    "command to resume (--storage-retry-s sets how long to wait).")
                raise self.gave_up from None


_RETRIED = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
            "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
            "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
            "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
            "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
            "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "get_best_trial")


class ResilientRDBStorage(RDBStorage):
    """RDBStorage whose calls wait out an outage (see the module docstring)."""

    outage: Outage

    def record_heartbeat(self, trial_id: int) -> None:
        """One try: a heartbeat lost in an outage is harmless, the next one lands when the database is back."""
        try:
            super().record_heartbeat(trial_id)
        except Exception as e:
            if not _transient(e):
                raise
            self.outage.last_failure = time.monotonic()

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """No heartbeat could land during an outage: right after one, every running trial looks stale. Judge
        staleness only once a whole grace period (plus two beats) has passed since this process last failed
        to reach the storage."""
        interval = self.heartbeat_interval or 0
        grace = self.grace_period if self.grace_period is not None else 2 * interval
        if self.outage.failed_within(grace + 2 * interval):
            return []
        return self.outage.call(functools.partial(RDBStorage._get_stale_trial_ids, self), study_id)  # type: ignore[no-any-return]


def _retrying(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self.outage.call(functools.partial(method, self), *args, **kwargs)

    return call


for _name in _RETRIED:
    setattr(ResilientRDBStorage, _name, _retrying(_name))


def open_storage(url: str, heartbeat_interval_s: int = 10, grace_s: int = 60, retry_s: float = DEFAULT_RETRY_S,
                 stale_callback: Callable[[optuna.Study, Any], None] | None = None,
                 writable: bool = True) -> ResilientRDBStorage:
    """The storage behind `url`, with heartbeats (a dead worker's trial goes stale, `stale_callback` re-queues
    it) and outage retries; connecting is retried the same way."""
    check_storage_url(url)
    if writable:
        check_sqlite_writable(url)
    driver_url = normalize_url(url)
    engine: dict[str, Any] | None = None
    if not driver_url.startswith("sqlite"):
        engine = {"pool_pre_ping": True}
        if driver_url.startswith("postgresql"):
            engine["connect_args"] = {"connect_timeout": 10}
    outage = Outage(url, retry_s)

    def connect() -> ResilientRDBStorage:
        storage = ResilientRDBStorage.__new__(ResilientRDBStorage)
        storage.outage = outage
        RDBStorage.__init__(storage, driver_url, engine_kwargs=engine, heartbeat_interval=heartbeat_interval_s,
                            grace_period=grace_s, heartbeat_stale_trial_callback=stale_callback)
        return storage

    try:
        return outage.call(connect)  # type: ignore[no-any-return]
    except Exception as e:
        import sqlalchemy.exc as sa

        if isinstance(e, (sa.ArgumentError, sa.NoSuchModuleError)):
            raise ConfigError(f"--storage {redact(url)}: {e}") from None
        raise

