"""Experiment tracking through Weights & Biases: the only module that imports `wandb`.

Tracking must never fail a trial. Every W&B call is guarded: on any error this module prints one
warning line to stderr and the run degrades to a no-op. `wandb` is imported only when a run
starts, and `pytorch_lightning` only when `WandbCallback` is first used, so importing this module
is cheap and `mode="off"` never loads wandb.

Offline runs land in `<dir>/wandb/offline-run-<time>-<id>/` and keep everything in one
`run-<id>.wandb` log (no wandb-summary.json); `read_offline_run` reads it back with
`wandb leet inspect`, and `sync_command` is the line that uploads it later.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnlab.errors import ConfigError

if TYPE_CHECKING:
    import pytorch_lightning as pl

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
    log_every_n_steps: int = 50
    init_timeout_s: float = 30

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


def _describe(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


class Run:
    """A W&B run, or a no-op stand-in (`active` is False) when tracking is off or broken."""

    def __init__(self, wandb_run: Any = None, *, mode: str = "off", log_every_n_steps: int = 50) -> None:
        self._run = wandb_run
        self.mode = mode if wandb_run is not None else "off"
        self.log_every_n_steps = log_every_n_steps
        self.id: str | None = wandb_run.id if wandb_run is not None else None
        self.run_dir: Path | None = Path(wandb_run.settings.sync_dir) if wandb_run is not None else None

    @property
    def active(self) -> bool:
        return self._run is not None

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

    def finish(self, exit_code: int = 0) -> None:
        if self._run is not None:
            self._call("finish", self._run.finish, exit_code=exit_code)
            self._run = None  # idempotent: a second finish is a no-op

    def callbacks(self) -> list[Any]:
        """The Lightning callbacks that log a training run into this W&B run."""
        return [__getattr__("WandbCallback")(self)] if self.active else []

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

    def start(self, *, name: str, group: str, job_type: str, tags: Sequence[str], config: Mapping[str, Any]) -> Run:
        return start_run(self.cfg, name=name, group=group, job_type=job_type, tags=tags, config=config)


def start_run(cfg: TrackingConfig, *, name: str, group: str, job_type: str, tags: Sequence[str],
              config: Mapping[str, Any]) -> Run:
    """Start a W&B run; any failure (or init timeout) gives a no-op `Run` and one warning."""
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
        run = wandb.init(
            mode="online" if mode == "online" else "offline",  # passed in code, so WANDB_MODE cannot override it
            project=cfg.project, entity=cfg.entity, dir=str(root), name=name, group=group,
            job_type=job_type, tags=[t[:MAX_TAG_CHARS] for t in tags], config=dict(config),
            reinit="create_new",  # each Run owns its run; a sweep worker starts many in one process
            settings=settings,
        )
        if run is None or getattr(run, "disabled", False):
            raise RuntimeError("wandb.init returned a disabled run (login timed out?)")
        # A login prompt answered "offline" turns an online request into an offline run.
        return Run(run, mode="offline" if getattr(run, "offline", False) else mode,
                   log_every_n_steps=cfg.log_every_n_steps)
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


def _scalars(metrics: Mapping[str, Any], prefixes: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not key.startswith(prefixes):
            continue
        if hasattr(value, "numel"):  # a tensor: only single values are scalars
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


class _WandbCallbackHooks:
    """Logs `trainer.callback_metrics` to a `Run`: "train/*" every `log_every_n_steps` optimizer
    steps (and at the end of training), "val/*" and "attn/*" after each validation, all at
    `step=trainer.global_step`. Mixed into `pytorch_lightning.Callback` as `WandbCallback`."""

    def __init__(self, run: Run, log_every_n_steps: int | None = None,
                 train_prefixes: tuple[str, ...] = ("train/",),
                 eval_prefixes: tuple[str, ...] = ("val/", "attn/")) -> None:
        super().__init__()
        self.run = run
        self.log_every_n_steps = log_every_n_steps or run.log_every_n_steps
        self.train_prefixes = train_prefixes
        self.eval_prefixes = eval_prefixes
        self._last_train_step = -1

    def _log(self, trainer: pl.Trainer, prefixes: tuple[str, ...]) -> None:
        metrics = _scalars(trainer.callback_metrics, prefixes)
        if metrics:
            self.run.log(metrics, step=trainer.global_step)

    def _log_train(self, trainer: pl.Trainer) -> None:
        self._last_train_step = trainer.global_step
        self._log(trainer, self.train_prefixes)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step  # optimizer steps so far; repeats under gradient accumulation
        if (self.run.active and trainer.is_global_zero and step > 0 and step != self._last_train_step
                and step % self.log_every_n_steps == 0):
            self._log_train(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs shorter than log_every_n_steps still get their final training metrics.
        if self.run.active and trainer.is_global_zero and trainer.global_step != self._last_train_step:
            self._log_train(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.run.active and trainer.is_global_zero and not trainer.sanity_checking:
            self._log(trainer, self.eval_prefixes)


if TYPE_CHECKING:

    class WandbCallback(_WandbCallbackHooks, pl.Callback):
        pass


def __getattr__(name: str) -> Any:
    # PEP 562: build the Lightning callback class on first use, so importing this module stays cheap.
    if name == "WandbCallback":
        import pytorch_lightning as pl

        cls = type("WandbCallback", (_WandbCallbackHooks, pl.Callback),
                   {"__module__": __name__, "__doc__": _WandbCallbackHooks.__doc__})
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _inspect(run_dir: Path, *flags: str, timeout_s: float) -> str:
    # `python -m wandb` with this interpreter is the venv's own `wandb` executable, on any OS.
    cmd = [sys.executable, "-m", "wandb", "leet", "inspect", *flags, str(run_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def _history_rows(records_jsonl: str) -> list[dict[str, Any]]:
    rows = []
    for line in records_jsonl.splitlines():
        if '"history"' in line:
            record = json.loads(line)
            if record.get("type") == "history":
                rows.append(record["history"]["item"])
    return rows


def read_offline_run(run_dir: Path | str, *, history: bool = False, timeout_s: float = 60) -> dict[str, Any]:
    """Read a local (offline or not yet synced) run back: "config", "summary", plus name, tags,
    state, exit_code, ... as `wandb leet inspect --summary --json` reports them; with
    `history=True` also "history", the logged rows (keys "_step" and the metric names)."""
    run_dir = Path(run_dir)
    data: dict[str, Any] = json.loads(_inspect(run_dir, "--summary", "--json", timeout_s=timeout_s))
    data["config"] = {k: v for k, v in (data.get("config") or {}).items() if k != "_wandb"}
    data["summary"] = data.get("summary") or {}
    if history:
        data["history"] = _history_rows(_inspect(run_dir, "--json", timeout_s=timeout_s))
    return data


def sync_command(run_dir: Path | str) -> str:
    """The line that uploads an offline run to W&B later."""
    return f"wandb sync {shlex.quote(str(run_dir))}"
