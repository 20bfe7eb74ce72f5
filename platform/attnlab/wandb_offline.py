"""Reading W&B runs back from disk: `read_offline_run` (config, summary, group, tags, artifacts, history of an
offline or not yet synced run, through `wandb leet inspect`) and `sync_command`. Runs the `wandb` CLI in a
subprocess and never imports wandb, so it sits below every layer; `attnlab.tracking` re-exports both.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any


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


def _run_and_artifacts(records_jsonl: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The log's run record (group, job type) and its artifacts: name, type, metadata, file names."""
    run: dict[str, Any] = {}
    artifacts = []
    for line in records_jsonl.splitlines():
        record = json.loads(line)
        if record.get("type") == "run":
            run = record["run"]
        elif record.get("type") == "artifact":
            art = record["artifact"]
            files = [entry["path"] for entry in (art.get("manifest") or {}).get("contents", [])]
            meta = art.get("metadata")
            artifacts.append({"name": art.get("name"), "type": art.get("type"), "files": files,
                              "metadata": json.loads(meta) if isinstance(meta, str) and meta else meta or {}})
    return run, artifacts


def read_offline_run(run_dir: Path | str, *, history: bool = False, timeout_s: float = 60) -> dict[str, Any]:
    """Read a local (offline or not yet synced) run back: "config", "summary", plus name, run_id, tags,
    state, exit_code, ... as `wandb leet inspect --summary --json` reports them, "group" and "job_type"
    from the run record, "artifacts" (name, type, files, metadata of each logged artifact); with
    `history=True` also "history", the logged rows (keys "_step" and the metric names)."""
    run_dir = Path(run_dir)
    data: dict[str, Any] = json.loads(_inspect(run_dir, "--summary", "--json", timeout_s=timeout_s))
    data["config"] = {k: v for k, v in (data.get("config") or {}).items() if k != "_wandb"}
    data["summary"] = data.get("summary") or {}
    records = _inspect(run_dir, "--json", timeout_s=timeout_s)
    run, data["artifacts"] = _run_and_artifacts(records)
    data["group"], data["job_type"] = run.get("run_group", ""), run.get("job_type", "")
    if history:
        data["history"] = _history_rows(records)
    return data


def sync_command(run_dir: Path | str) -> str:
    """The line that uploads an offline run to W&B later."""
    return f"wandb sync {shlex.quote(str(run_dir))}"
