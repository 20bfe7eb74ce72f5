"""Where the project's files are: resolved from the project root, never from the working directory.

The root is `--root` (passed in by the CLI), else `$ATTNLAB_ROOT`, else the checkout this package runs from (the
directory holding `pyproject.toml` and `ablations/` above `platform/attnlab`), else the working directory (an
installed wheel used outside any checkout). `results/`, `ablations/` and `sweeps/` live under it; when the root has
no `ablations/` (or `sweeps/`), the copies shipped inside the wheel (`attnlab/_data/`, made by setup.py) are used.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]
_SHIPPED = Path(__file__).resolve().parent / "_data"  # only in an installed wheel
_override: Path | None = None
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


def set_root(path: str | Path | None) -> None:
    """The CLI's `--root`; None restores the default resolution."""
    global _override
    _override = Path(path).resolve() if path is not None else None


def project_root() -> Path:
    if _override is not None:
        return _override
    env = os.environ.get("ATTNLAB_ROOT")
    if env:
        return Path(env).resolve()
    if in_checkout():
        return _CHECKOUT
    return Path.cwd()


def in_checkout() -> bool:
    """True when this package runs from a source checkout (not from an installed wheel)."""
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "ablations").is_dir()


def results_dir() -> Path:
    """`$ATTNLAB_RESULTS` (tests point it at a temporary folder), else `<root>/results`."""
    env = os.environ.get("ATTNLAB_RESULTS")
    return Path(env).resolve() if env else project_root() / "results"


def _config_dir(folder: str) -> Path:
    own = project_root() / folder
    if own.is_dir() or not (_SHIPPED / folder).is_dir():
        return own
    return _SHIPPED / folder


def ablations_dir() -> Path:
    return _config_dir("ablations")


def sweeps_dir() -> Path:
    return _config_dir("sweeps")


@cache
def git_commit() -> str:
    """The checkout's commit (12 hex digits), or "unknown" for an installed wheel: never the commit of some other
    repository the package happens to be installed under."""
    if not in_checkout():
        return "unknown"
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=_CHECKOUT, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def shown(path: str | Path) -> str:
    """`path` as a command line in a report should show it: relative to the project root when inside it (the
    report stays valid in another clone), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(project_root().resolve()))
    except ValueError:
        return str(p)


def check_name(name: str, what: str = "name") -> str:
    """A study/run name becomes a file or directory name: no separators, no `..`, nothing hidden."""
    if not SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"{what} {name!r}: use letters, digits and . _ - = + only (no '/', no '..', not starting "
                         "with '.' or '-'); it names files under results/")
    return name
