"""attnlab.tracking: offline runs read back from disk, sequential runs, mode=off, an unreachable
server, and the Lightning callback. No test touches the network: offline runs need none, and the
online case points at a closed loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from attnlab.config import ConfigError
from attnlab.tracking import Run, TrackingConfig, provenance, read_offline_run, start_run, sync_command

REPO = Path(__file__).resolve().parents[1]
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused at once


@pytest.fixture(autouse=True)
def _hostile_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # If start_run ever let the environment pick the mode, wandb.init would go online without a key
    # and fail, the run would degrade to a no-op, and the read-back tests below would fail.
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))


def offline_cfg(tmp_path: Path, **kw: Any) -> TrackingConfig:
    return TrackingConfig(mode="offline", dir=str(tmp_path / "runs"), **kw)


def start(cfg: TrackingConfig, name: str = "trial-0", config: dict[str, Any] | None = None) -> Run:
    return start_run(cfg, name=name, group="study", job_type="sst2", tags=["attention=dot", "lr=0.001"],
                     config=config or {"model": {"d_model": 16, "attention": "dot"}, "lr": 1e-3})


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), WANDB_DIR=str(tmp_path), PYTHONPATH=str(REPO / "platform"),
               WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"), **extra)
    return env


def test_offline_run_reads_back_config_and_summary(tmp_path: Path) -> None:
    run = start(offline_cfg(tmp_path))
    assert run.active and run.mode == "offline" and run.id
    assert run.run_dir is not None and run.run_dir.is_dir()
    assert run.run_dir.parent == tmp_path / "runs" / "wandb" and run.run_dir.name.startswith("offline-run-")
    run.log({"train/loss": 1.25}, step=5)
    run.log({"train/loss": 0.5}, step=10)
    run.log_table("val/confusion", ["label", "count"], [["pos", 3], ["neg", 4]])
    run.summary({"val/accuracy": 0.75, "cost/params": 123})
    run.finish()
    assert not run.active
    run.log({"train/loss": 9.0})  # after finish: a no-op, not an error

    back = read_offline_run(run.run_dir, history=True)
    assert back["config"] == {"model": {"d_model": 16, "attention": "dot"}, "lr": 1e-3, **provenance()}
    assert back["config"]["attnlab_version"] and back["config"]["git_commit"]
    assert back["group"] == "study" and back["job_type"] == "sst2" and back["name"] == "trial-0"
    assert back["summary"]["val/accuracy"] == 0.75
    assert back["summary"]["cost/params"] == 123
    assert back["summary"]["train/loss"] == 0.5
    assert back["summary"]["val/confusion"]["nrows"] == 2
    assert back["tags"] == ["attention=dot"] and back["state"] == "finished"  # a float tag goes to the config
    assert [(h["_step"], h["train/loss"]) for h in back["history"]] == [(5, 1.25), (10, 0.5)]
    assert sync_command(run.run_dir) == f"wandb sync {run.run_dir}"


def test_sequential_runs_land_in_separate_dirs(tmp_path: Path) -> None:
    cfg = offline_cfg(tmp_path)
    dirs: list[Path] = []
    for trial in range(2):
        with start(cfg, name=f"trial-{trial}", config={"trial": trial}) as run:
            run.summary({"val/accuracy": 0.5 + trial / 10})
            assert run.run_dir is not None
            dirs.append(run.run_dir)
    assert dirs[0] != dirs[1]
    assert sorted(p.name for p in (tmp_path / "runs" / "wandb").glob("offline-run-*")) == sorted(d.name for d in dirs)
    for trial, run_dir in enumerate(dirs):
        back = read_offline_run(run_dir)
        assert back["config"] == {"trial": trial, **provenance()}
        assert back["summary"]["val/accuracy"] == pytest.approx(0.5 + trial / 10)


class BrokenWandbRun:
    id = "broken1"
    settings = type("S", (), {"sync_dir": "/nonexistent/offline-run-x-broken1"})()

    def __init__(self) -> None:
        self.summary: dict[str, Any] = {}
        self.finished: list[int] = []

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        raise ConnectionError("backend went away")

    def finish(self, exit_code: int = 0) -> None:
        self.finished.append(exit_code)


def test_failing_wandb_call_warns_once_and_degrades(capsys: pytest.CaptureFixture[str]) -> None:
    broken = BrokenWandbRun()
    run = Run(broken, mode="offline")
    assert run.active
    run.log({"train/loss": 1.0}, step=1)  # raises inside: must not escape
    run.log({"train/loss": 2.0}, step=2)
    run.summary({"val/accuracy": 0.5})
    run.finish()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "W&B log failed (ConnectionError: backend went away)" in err[0], err
    assert not run.active and broken.finished == [1] and broken.summary == {}


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="mode"):
        TrackingConfig(mode="disabled")
    with pytest.raises(ConfigError, match="log_every_n_steps"):
        TrackingConfig(log_every_n_steps=0)


def test_auto_mode_follows_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TrackingConfig(mode="auto").resolved_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert TrackingConfig(mode="auto").resolved_mode() == "online"


def test_off_mode_is_a_noop_and_never_imports_wandb(tmp_path: Path) -> None:
    code = f"""
import sys
from attnlab.tracking import TrackingConfig, start_run
run = start_run(TrackingConfig(mode="off", dir={str(tmp_path / "runs")!r}), name="n", group="g",
                job_type="t", tags=["a"], config={{"x": 1}})
run.log({{"train/loss": 1.0}}, step=1); run.summary({{"val/accuracy": 0.5}})
run.log_table("t", ["a"], [[1]]); run.finish()
print(run.active, run.run_dir, run.id, "wandb" in sys.modules, "pytorch_lightning" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(tmp_path), capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "None", "None", "False", "False"], out.stderr
    assert not (tmp_path / "runs").exists()


def test_unreachable_server_degrades_to_noop_quickly(tmp_path: Path) -> None:
    code = f"""
import json, time
from attnlab.tracking import TrackingConfig, start_run
cfg = TrackingConfig(mode="online", dir={str(tmp_path / "runs")!r}, init_timeout_s=3)
times, runs = [], []
for name in ("first", "second"):
    t0 = time.monotonic()
    runs.append(start_run(cfg, name=name, group="g", job_type="t", tags=[], config={{"x": 1}}))
    times.append(time.monotonic() - t0)
for run in runs:
    run.log({{"train/loss": 1.0}}, step=1); run.summary({{"val/accuracy": 0.5}}); run.finish(exit_code=1)
print("RESULT", json.dumps({{"times": times, "active": [r.active for r in runs], "dirs": [r.run_dir for r in runs]}}))
"""
    env = subprocess_env(tmp_path, WANDB_API_KEY="0123456789abcdef" * 2 + "01234567", WANDB_BASE_URL=CLOSED_PORT_URL)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90,
                         check=True)
    result = json.loads(next(line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")))
    assert result["active"] == [False, False] and result["dirs"] == [None, None]
    assert result["times"][0] < 30  # init_timeout_s=3; wandb's own default would block ~100 s
    assert result["times"][1] < 1, "a second online init in the same process must not wait again"
    warnings = [line for line in out.stderr.splitlines() if line.startswith("attnlab: W&B")]
    assert len(warnings) == 2, out.stderr
    assert "init failed" in warnings[0] and "--wandb off" in warnings[0]
    assert "skipped" in warnings[1]


def test_wandb_callback_logs_train_val_and_attn_metrics(tmp_path: Path) -> None:
    import pytorch_lightning as pl
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from attnlab.tracking import WandbCallback

    class TinyMLP(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train/loss", loss)
            self.log("other/ignored", 1.0)
            return loss

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
            x, y = batch
            self.log("val/accuracy", (self.net(x).argmax(-1) == y).float().mean())
            self.log("attn/attn0/mix/dot", 0.25)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = TensorDataset(torch.randn(12, 4), torch.randint(0, 2, (12,)))
    loader = DataLoader(data, batch_size=4)  # 3 steps per epoch
    run = start(offline_cfg(tmp_path, log_every_n_steps=2))
    trainer = pl.Trainer(max_steps=7, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                         default_root_dir=str(tmp_path), callbacks=[WandbCallback(run)])
    trainer.fit(TinyMLP(), loader, loader)
    run.finish()

    assert run.run_dir is not None
    back = read_offline_run(run.run_dir, history=True)
    assert {"train/loss", "val/accuracy", "attn/attn0/mix/dot"} <= set(back["summary"])
    assert not any(k.startswith("other/") for k in back["summary"])
    steps = {key: [h["_step"] for h in back["history"] if key in h] for key in ("train/loss", "val/accuracy")}
    # every 2nd optimizer step, plus the final step 7; validation after each 3-step epoch
    assert steps == {"train/loss": [2, 4, 6, 7], "val/accuracy": [3, 6]}
