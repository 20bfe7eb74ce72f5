"""The progress bar of a step-bounded run counts steps of max_steps across epochs (not "Epoch 0 … batch/epoch")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attnlab.config import load_run_config
from attnlab.train.runner import train_run

REPO = Path(__file__).resolve().parents[2]


def test_bar_counts_steps_of_max_steps_across_epochs(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_run_config(REPO / "sweeps/base/sst2.yaml", [
        "model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32", "model.max_len=32",
        "task.max_length=32", "task.vocab_size=300", "task.max_train_examples=32", "task.max_eval_examples=16",
        "train.batch_size=16", "train.max_steps=5", "train.max_epochs=10"])  # 2 steps per epoch: 3 epochs
    train_run(cfg, progress=True)
    text = capsys.readouterr()
    out = (text.out + text.err).replace("\r", "\n")
    counts = re.findall(r"step \(epoch (\d)\)[^\n]*?\b(\d+)/(\d+)\b", out)
    assert counts, out[-2000:]
    assert {total for _, _, total in counts} == {"5"}  # of max_steps, never of the epoch's 2 batches
    assert ("2", "5", "5") in counts  # the last epoch ends the run at 5/5
    assert "Epoch 0" not in out
