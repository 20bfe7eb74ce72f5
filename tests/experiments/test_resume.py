"""A long trial killed mid-run resumes from its last checkpoint when re-queued: same steps, same metrics as
an uninterrupted run; the record says where it resumed; the checkpoint is gone once the trial completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from attnlab.cli import main
from attnlab.record import records_from_trial_attrs

REPO = Path(__file__).resolve().parents[2]


def resumable_sweep(tmp_path: Path, data_root: Path, name: str) -> Path:
    doc = {
        "name": name, "base": str(REPO / "sweeps/base/sst2.yaml"),
        # 8 batches an epoch, 160 steps: the kill lands mid-epoch in a later epoch; dropout on (its random
        # state is restored too); a validation every 40 steps (curves survive the resume)
        "set": {"model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1, "model.d_ff": 32, "model.max_len": 32,
                "task.max_length": 32, "task.vocab_size": 300, "task.max_train_examples": 128,
                "task.max_eval_examples": 64, "train.batch_size": 16, "train.max_steps": 160,
                "train.val_every_n_steps": 40, "train.checkpoint_every_n_steps": 7, "train.accelerator": "cpu",
                "task.data_root": str(data_root)},
        "objectives": [{"metric": "val/accuracy"}],
        "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "n_trials": 1,
        "heartbeat": {"interval_s": 1, "grace_s": 3},
    }
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def saved_step(root: Path) -> int:
    found = list(root.glob("*/last.ckpt"))
    if not found:
        return 0
    try:
        return int(torch.load(found[0], map_location="cpu", weights_only=False)["global_step"])
    except (OSError, RuntimeError, EOFError):  # replaced while read
        return 0


def the_record(url: str, name: str) -> tuple[Any, list[Any]]:
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    (done,) = [t for t in trials if t.state == TrialState.COMPLETE]
    (record,) = records_from_trial_attrs(done.user_attrs)
    return record, trials


@pytest.mark.slow
def test_killed_trial_resumes_from_its_checkpoint(data_root: Path, tmp_path: Path) -> None:
    results = Path(os.environ["ATTNLAB_RESULTS"])
    ref_url, url = f"sqlite:///{tmp_path / 'ref.db'}", f"sqlite:///{tmp_path / 'killed.db'}"
    assert main(["sweep", str(resumable_sweep(tmp_path, data_root, "uninterrupted")), "--storage", ref_url,
                 "--wandb", "off", "--no-report"]) == 0
    reference, _ = the_record(ref_url, "uninterrupted")
    assert reference.resumed_from_step is None and reference.cost.train_steps == 160

    path = resumable_sweep(tmp_path, data_root, "killed")
    env = dict(os.environ, PYTHONPATH=str(REPO / "platform"))
    worker = subprocess.Popen([sys.executable, "-m", "attnlab.cli", "sweep", str(path), "--storage", url, "--wandb",
                               "off", "--no-report"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_root = results / "sweeps" / "killed" / "ckpt"
    deadline = time.time() + 180
    while saved_step(ckpt_root) < 28 and time.time() < deadline and worker.poll() is None:
        time.sleep(0.02)  # kill in epoch 3 or later: a resumed loader must replay the epochs before it
    assert worker.poll() is None, "the worker finished before its checkpoint: nothing to kill"
    os.kill(worker.pid, signal.SIGKILL)  # no handler runs: the trial stays RUNNING, its heartbeat stops
    worker.wait()
    step = saved_step(ckpt_root)
    assert 28 <= step < 160 and step % 7 == 0 and step % 8, "resume mid-epoch"
    time.sleep(4)  # past the heartbeat grace: the next worker marks the trial stale and re-queues it

    assert main(["sweep", str(path), "--storage", url, "--wandb", "off", "--no-report"]) == 0
    resumed, trials = the_record(url, "killed")
    assert any(t.state == TrialState.FAIL for t in trials)  # the killed attempt
    assert resumed.resumed_from_step is not None and resumed.resumed_from_step >= step
    assert resumed.cost.train_steps == 160
    assert resumed.cost.train_tokens == reference.cost.train_tokens  # counted from step 0 through the resume
    for key in ("val/accuracy", "val/loss", "val/score"):
        # The same batches in the same order and the same dropout masks: the same float operations.
        torch.testing.assert_close(resumed.metrics[key], reference.metrics[key], rtol=0, atol=1e-6)
    assert [p[0] for p in resumed.curves["val/score"]] == [p[0] for p in reference.curves["val/score"]]
    assert not list(ckpt_root.glob("*/last.ckpt")), "the checkpoint outlived its completed trial"
