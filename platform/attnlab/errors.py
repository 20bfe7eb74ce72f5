"""Errors every layer may raise: the lowest module of the package (imports nothing from attnlab)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config problem, with the dotted key (and file, once the loader knows it)."""


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file (and line) and the fix."""


class StorageError(BaseException):
    """The study storage (experiment database) stayed unreachable; the message names it (password masked) and
    says how to resume. A BaseException so that no `except Exception` on the way (a trial body, Lightning,
    optuna's trial runner) mistakes it for a failed trial and writes that into a database that is not there."""


class Interrupted(BaseException):
    """Ctrl-C / SIGTERM during a study: a BaseException (like KeyboardInterrupt) but not one, so Lightning
    does not turn it into `sys.exit(1)` and the trial body can mark its trial interrupted."""
