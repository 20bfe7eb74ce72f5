"""The record carries what the report's statistics need: per-example dev predictions that rescore to the
recorded `val/score` exactly (accuracy and F1), and learning curves every `train.val_every_n_steps`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnlab.config import load_run_config
from attnlab.predictions import decode
from attnlab.report.inference import score_replicates
from attnlab.train.runner import train_run

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.d_model=16", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32", "model.max_len=32",
        "task.max_length=32", "task.vocab_size=300", "train.batch_size=16", "task.max_train_examples=128",
        "task.max_eval_examples=100", "train.max_steps=6", "train.val_every_n_steps=2", "train.log_every_n_steps=1"]


@pytest.mark.parametrize("task", ["glue/sst2", "glue/mrpc"])
def test_record_predictions_rescore_and_curves(data_root: Path, task: str) -> None:
    cfg = load_run_config(REPO / "sweeps/base/sst2.yaml", [*TINY, f"task.name={task}", f"task.data_root={data_root}"])
    record = train_run(cfg, progress=False)
    p = decode(record.predictions)
    assert p is not None and p.split_sizes == (100,)
    rescored = float(score_replicates(task, p, [np.ones((1, 100))])[0])
    assert rescored == pytest.approx(record.metrics["val/score"], abs=1e-4)
    assert len(json.dumps(record.predictions)) < 200  # 100 examples: a few dozen bytes each way
    assert [step for step, _ in record.curves["val/score"]] == [2, 4, 6]  # the final validate replaces step 6
    assert record.curves["val/score"][-1][1] == pytest.approx(record.metrics["val/score"])
    assert [step for step, _ in record.curves["train/loss"]] == [1, 2, 3, 4, 5, 6]
