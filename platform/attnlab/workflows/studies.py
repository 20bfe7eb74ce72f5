"""Opening studies that must already exist (never creating a database), storage URLs, `sweep status`."""


from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import optuna

from attnlab.errors import ConfigError, StorageError
from attnlab.experiments.storage import DEFAULT_RETRY_S, check_storage_url, open_storage, sqlite_path
from attnlab.experiments.study import (
    STORAGE_ENV,
    default_storage,
)
from attnlab.experiments.sweep_config import load_sweep
from attnlab.paths import check_name
from attnlab.secrets import redact


def storage_url(given: str | None, from_file: str | None, default: Callable[[], str]) -> str:
    """--storage, else (in a spawned worker) the parent's, else the file's, else the default SQLite file."""
    if given:
        return check_storage_url(given, "--storage")
    return os.environ.get(STORAGE_ENV) or from_file or default()


def storage_down(url: str) -> StorageError:
    return StorageError(f"storage {redact(url)} stayed unreachable; every finished trial is safe in it. When it is "
                        "back, rerun the same command to resume (--storage-retry-s sets how long to wait).")


def open_existing_study(name: str, url: str, retry_s: float = DEFAULT_RETRY_S) -> optuna.Study:
    """Load a study without ever creating a database: a wrong --storage is an error, not an empty file."""
    check_storage_url(url)
    db = sqlite_path(url)
    if db is not None and not db.is_file():
        raise ConfigError(f"no study database at {db}; run the experiment first or pass --storage")
    try:
        # heartbeats at the defaults of sweep files, so `sweep status` can tell a dead worker's trial
        storage = open_storage(url, retry_s=retry_s, writable=False)
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise ConfigError(f"no study {name!r} in storage {redact(url)}; run `attnlab sweep FILE` first or pass "
                          "--storage") from None


def try_existing_study(name: str, url: str, retry_s: float) -> optuna.Study | None:
    try:
        return open_existing_study(name, url, retry_s)
    except ConfigError:
        return None


def sweep_status(target: str, storage: str | None, storage_retry_s: float = DEFAULT_RETRY_S) -> int:
    from attnlab.experiments.status import format_status

    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        cfg = load_sweep(target)
        name, url = cfg.name, storage_url(storage, cfg.storage, lambda: default_storage(cfg.name, create_dir=False))
    else:
        check_name(target, "study name")
        name, url = target, storage_url(storage, None, lambda: default_storage(target, create_dir=False))
    print(format_status(open_existing_study(name, url, storage_retry_s)))
    return 0


# ---- grids (ablations) ------------------------------------------------------------------------------
