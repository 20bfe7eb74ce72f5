"""`attnlab dashboard STUDY_OR_FILE`: optuna-dashboard (the `dashboard` extra) on a study's storage.

The target is what the other commands take: a sweep file, an ablation name or file (with `--preset`), a study
name, or a SQLite `.db` file; `--storage URL` wins over all of them. The server binds 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnlab.errors import ConfigError

HOST = "127.0.0.1"


def storage_of(target: str, storage: str | None = None, preset: str | None = None) -> str:
    """The storage URL holding `target`'s study; a SQLite file must exist (a wrong name is an error, not an
    empty database)."""
    from attnlab.experiments.study import default_storage

    url = storage
    path = Path(target)
    if url is None and path.suffix in (".db", ".sqlite", ".sqlite3"):
        url = f"sqlite:///{path.resolve()}"
    elif url is None and path.suffix in (".yaml", ".yml"):
        from attnlab.config import load_yaml

        data = load_yaml(path)
        if "space" in data or "objectives" in data:
            from attnlab.experiments.sweep_config import load_sweep

            cfg = load_sweep(path)
            url = cfg.storage or default_storage(cfg.name, create_dir=False)
        else:
            url = _ablation_storage(target, preset)
    elif url is None:
        from attnlab.paths import ablations_dir

        if (ablations_dir() / f"{target}.yaml").is_file():
            url = _ablation_storage(target, preset)
        else:
            url = default_storage(target, create_dir=False)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"no study database at {url.removeprefix('sqlite:///')}; run the experiment first or "
                          "pass --storage")
    return url


def _ablation_storage(name: str, preset: str | None) -> str:
    from attnlab.experiments.grid import study_name
    from attnlab.experiments.grid_config import find_ablation, load_ablation
    from attnlab.experiments.study import default_storage

    abl = load_ablation(find_ablation(name))
    r = abl.resolve(preset)
    return abl.storage or default_storage(study_name(abl, r.preset), create_dir=False)


def serve(url: str, port: int, run_server: Callable[..., Any] | None = None) -> int:
    """Run optuna-dashboard on `url` until interrupted (tests pass their own `run_server`)."""
    server: Callable[..., Any]
    if run_server is not None:
        server = run_server
    else:
        try:
            import optuna_dashboard

            server = optuna_dashboard.run_server
        except ImportError:
            raise ConfigError("optuna-dashboard is not installed: pip install 'attnlab[dashboard]' "
                              f"(or run: optuna-dashboard {url})") from None
    from attnlab.experiments.storage import normalize_url
    from attnlab.secrets import redact

    print(f"optuna-dashboard on http://{HOST}:{port}/ for {redact(url)} (Ctrl-C stops it)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server(normalize_url(url), host=HOST, port=port)
    return 0
