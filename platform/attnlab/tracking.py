"""Experiment tracking through Weights & Biases: the only module that imports `wandb`.

Tracking must never fail a trial. Every W&B call is guarded: on any error this module prints one
warning line to stderr and the run degrades to a no-op. `wandb` is imported only when a run
starts, and `pytorch_lightning` only when `WandbCallback` is first used, so importing this module
is cheap and `mode="off"` never loads wandb.

Offline runs land in `<dir>/wandb/offline-run-<time>-<id>/` and keep everything in one
`run-<id>.wandb` log (no wandb-summary.json); `read_offline_run` reads it back with
`wandb leet inspect`, and `sync_command` is the line that uploads it later.

What W&B users expect: a run started with a `run_id` resumes that run (`resume="allow"`; a retried trial
continues its own run instead of leaving a failed duplicate; offline, each attempt is its own directory and
`wandb sync` merges them by id); tags are categorical (a `key=<float>` tag is dropped: floats belong in the
config); every run's config carries `attnlab_version` and `git_commit`; records, checkpoints and reports are
logged as artifacts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnlab.errors import ConfigError
from attnlab.secrets import redact, redact_obj
from attnlab.wandb_offline import read_offline_run as read_offline_run  # re-exported: the read-back
from attnlab.wandb_offline import sync_command as sync_command  # half of W&B lives in wandb_offline

if TYPE_CHECKING:

    from attnlab.record import Record

MODES = ("offline", "online", "off", "auto")
DEFAULT_ROOT = "results"  # runs land in results/wandb/
DEFAULT_BASE_URL = "https://api.wandb.ai"
MAX_TAG_CHARS = 64  # W&B rejects longer tags, which would cost the whole run
ONLINE_RETRY_AFTER_S = 600.0

# base URL → monotonic time before which online init is not retried (a sweep worker would
# otherwise wait init_timeout_s in every trial once the server is unreachable).
_online_down_until: dict[str, float] = {}


@dataclass(frozen=True)
class TrackingConfig:
    mode: str = "offline"  # offline | online | off | auto (online iff WANDB_API_KEY is set)
    project: str = "attnlab"
    entity: str | None = None
    dir: str | None = None  # W&B root: runs go to <dir>/wandb/; default $WANDB_DIR, else results
    log_every_n_steps: int = 50  # a run of a training config logs every train.log_every_n_steps instead
    init_timeout_s: float = 30
    log_checkpoints: bool = False  # also log each trial's Lightning checkpoint as a "model" artifact

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"tracking.mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.log_every_n_steps < 1:
            raise ConfigError(f"tracking.log_every_n_steps: must be >= 1, got {self.log_every_n_steps}")
        if not self.init_timeout_s > 0:
            raise ConfigError(f"tracking.init_timeout_s: must be > 0, got {self.init_timeout_s}")

    def resolved_mode(self) -> str:
        if self.mode == "auto":
            return "online" if os.environ.get("WANDB_API_KEY") else "offline"
        return self.mode

    def root_dir(self) -> Path:
        return Path(self.dir or os.environ.get("WANDB_DIR") or DEFAULT_ROOT)


def _warn(message: str) -> None:
    print(f"attnlab: {message}", file=sys.stderr, flush=True)


_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf)$", re.IGNORECASE)
_ARTIFACT_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def categorical_tags(tags: Sequence[str]) -> list[str]:
    """Tags that group runs: `kind=linear`, `seed=0` stay; `lr=0.00123` goes (a float is a config value, and one
    unique tag per run makes W&B's tag filter useless). Truncated to W&B's tag length."""
    kept: list[str] = []
    for tag in tags:
        value = tag.split("=", 1)[1] if "=" in tag else ""
        if value and _FLOAT.match(value) and not value.lstrip("+-").isdigit():
            continue
        kept.append(tag[:MAX_TAG_CHARS])
    return list(dict.fromkeys(kept))


def artifact_name(name: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.' only."""
    return _ARTIFACT_UNSAFE.sub("_", name)[:128]


def _describe(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


class Run:
    """A W&B run, or a no-op stand-in (`active` is False) when tracking is off or broken."""

    def __init__(self, wandb_run: Any = None, *, mode: str = "off", log_every_n_steps: int = 50,
                 log_checkpoints: bool = False) -> None:
        self._run = wandb_run
        self.mode = mode if wandb_run is not None else "off"
        self.log_every_n_steps = log_every_n_steps
        self.log_checkpoints = log_checkpoints
        self.id: str | None = wandb_run.id if wandb_run is not None else None
        self.run_dir: Path | None = Path(wandb_run.settings.sync_dir) if wandb_run is not None else None

    @property
    def active(self) -> bool:
        return self._run is not None

    @property
    def wants_checkpoint(self) -> bool:
        """True when the trial should save a checkpoint for `log_record` to log."""
        return self._run is not None and self.log_checkpoints

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        if self._run is None:
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:
            # One warning, then this run stops talking to W&B: a broken backend would fail every call.
            _warn(f"W&B {what} failed ({_describe(e)}); continuing without tracking for run {self.id}; "
                  "use --wandb off to silence")
            run, self._run = self._run, None
            if what != "finish":
                with contextlib.suppress(Exception):
                    run.finish(exit_code=1)

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._run is not None:
            self._call("log", self._run.log, dict(metrics), step=step)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        if self._run is not None:
            self._call("summary update", self._run.summary.update, dict(metrics))

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self._run is None:
            return

        def log_it() -> None:
            import wandb

            self._run.log({key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

        self._call("table log", log_it)

    def log_artifact(self, name: str, kind: str, files: Sequence[Path], metadata: Mapping[str, Any] | None = None,
                     aliases: Sequence[str] = ()) -> None:
        """Log `files` (copied into W&B's staging area at once) as one artifact `name` of type `kind`."""
        if self._run is None:
            return

        def log_it() -> None:
            import wandb

            art = wandb.Artifact(artifact_name(name), type=kind, metadata=dict(metadata or {}))
            for f in files:
                art.add_file(str(f), name=Path(f).name)
            self._run.log_artifact(art, aliases=list(aliases) or None)

        self._call("artifact log", log_it)

    def log_record(self, record: Record, checkpoint: Path | None = None) -> None:
        """The trial's record as a "record" artifact (and its checkpoint as a "model" artifact when given)."""
        if self._run is None:
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix="attnlab-record-") as tmp:
            path = Path(tmp) / "record.json"
            path.write_text(json.dumps(record.to_dict(), indent=2, sort_keys=True))
            meta = {"task": record.task, "config_hash": record.config_hash, "study": record.study,
                    "trial": record.trial}
            self.log_artifact(f"record-{self.id}", "record", [path], meta)
        if checkpoint is not None and Path(checkpoint).is_file():
            self.log_artifact(f"model-{self.id}", "model", [Path(checkpoint)], meta)

    def finish(self, exit_code: int = 0) -> None:
        if self._run is not None:
            self._call("finish", self._run.finish, exit_code=exit_code)
            self._run = None  # idempotent: a second finish is a no-op

    def callbacks(self) -> list[Any]:
        """The Lightning callbacks that log a training run into this W&B run."""
        from attnlab.train.logging_callback import RunLoggingCallback

        return [RunLoggingCallback(self)] if self.active else []

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    def __repr__(self) -> str:
        return f"Run(mode={self.mode!r}, id={self.id!r}, run_dir={self.run_dir!r})"


@dataclass(frozen=True)
class WandbTracker:
    """`attnlab.experiments.trial.Tracker` over W&B: one run per training run, never failing a trial."""

    cfg: TrackingConfig

    def start(self, *, name: str, group: str, job_type: str, tags: Sequence[str], config: Mapping[str, Any],
              run_id: str | None = None, log_every_n_steps: int | None = None) -> Run:
        return start_run(self.cfg, name=name, group=group, job_type=job_type, tags=tags, config=config,
                         run_id=run_id, log_every_n_steps=log_every_n_steps)


def provenance() -> dict[str, str]:
    """What every run's config carries: the attnlab version and the checkout's commit."""
    import attnlab
    from attnlab.paths import git_commit

    return {"attnlab_version": attnlab.__version__, "git_commit": git_commit()}


@contextlib.contextmanager
def _redacted_argv() -> Any:
    """sys.argv with URL passwords masked while W&B reads it (the CLI masks it too; library callers may not)."""
    saved = sys.argv
    sys.argv = [redact(a) for a in saved]
    try:
        yield
    finally:
        sys.argv = saved


def start_run(cfg: TrackingConfig, *, name: str, group: str, job_type: str, tags: Sequence[str],
              config: Mapping[str, Any], run_id: str | None = None, log_every_n_steps: int | None = None) -> Run:
    """Start a W&B run; any failure (or init timeout) gives a no-op `Run` and one warning. With `run_id` the run
    is resumed when it exists (`resume="allow"`), so a retried trial continues its own run."""
    mode = cfg.resolved_mode()
    if mode == "off":
        return Run(None)
    base_url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
    if mode == "online" and _online_down_until.get(base_url, 0.0) > time.monotonic():
        _warn(f"W&B online init skipped: {base_url} failed earlier in this process; continuing without "
              "tracking; use --wandb offline (and wandb sync later) or --wandb off")
        return Run(None)
    started = time.monotonic()
    try:
        root = cfg.root_dir().resolve()
        (root / "wandb").mkdir(parents=True, exist_ok=True)
        # Scratch space (core logs, artifact staging) next to the runs instead of ~/.cache, ~/.local;
        # a user's own setting wins. WANDB_CONFIG_DIR is left alone: it holds `wandb login --host`.
        os.environ.setdefault("WANDB_CACHE_DIR", str(root / "wandb" / ".cache"))
        os.environ.setdefault("WANDB_DATA_DIR", str(root / "wandb" / ".data"))
        import wandb

        settings = wandb.Settings(
            init_timeout=cfg.init_timeout_s,
            login_timeout=cfg.init_timeout_s,  # bounds an interactive key prompt
            # Quiet: no per-trial banner in a sweep's output; online, the non-quiet login banner also
            # looks the user up with a separate 10 s HTTP timeout. Run dirs are in the trial records.
            quiet=True,
        )
        with _redacted_argv():  # W&B records sys.argv in the run's metadata
            run = wandb.init(
                mode="online" if mode == "online" else "offline",  # passed in code: WANDB_MODE cannot override it
                project=cfg.project, entity=cfg.entity, dir=str(root), name=name, group=group,
                job_type=job_type, tags=categorical_tags(tags), config=redact_obj({**provenance(), **config}),
                id=run_id, resume="allow" if run_id else None,
                reinit="create_new",  # each Run owns its run; a sweep worker starts many in one process
                settings=settings,
            )
        if run is None or getattr(run, "disabled", False):
            raise RuntimeError("wandb.init returned a disabled run (login timed out?)")
        # A login prompt answered "offline" turns an online request into an offline run.
        return Run(run, mode="offline" if getattr(run, "offline", False) else mode,
                   log_every_n_steps=log_every_n_steps or cfg.log_every_n_steps, log_checkpoints=cfg.log_checkpoints)
    except Exception as e:
        if mode == "online":
            _online_down_until[base_url] = time.monotonic() + ONLINE_RETRY_AFTER_S
            fix = ("check WANDB_API_KEY/WANDB_BASE_URL and the network, use --wandb offline "
                   "(and wandb sync later), or --wandb off to silence")
        else:
            fix = "use --wandb off to silence"
        _warn(f"W&B init failed after {time.monotonic() - started:.1f}s ({_describe(e)}); "
              f"continuing without tracking; {fix}")
        return Run(None)


def __getattr__(name: str) -> Any:
    # `WandbCallback` is the generic run-logging callback of the training layer (kept under this name).
    if name == "WandbCallback":
        from attnlab.train.logging_callback import RunLoggingCallback

        return RunLoggingCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
