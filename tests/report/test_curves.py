"""Learning curves in the report: the mean over seeds per step, one figure per report, pretraining curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnlab.report.curves import mean_curve, plot_curves, plot_pretrain_curves, pretrain_records
from attnlab.report.grid import Grid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_mean_curve_by_hand() -> None:
    records = [{"curves": {"val/score": [[10, 50.0], [20, 60.0]]}}, {"curves": {"val/score": [[10, 54.0]]}}, {}]
    assert mean_curve(records, "val/score") == [(10.0, 52.0), (20.0, 60.0)]
    assert mean_curve(records, "train/loss") == []


def test_curve_plots(tmp_path: Path) -> None:
    plain = [{"row": r, "task": "glue/sst2", "seed": 0, "metrics": {"val/score": 50.0}} for r in ("a", "b")]
    assert plot_curves(Grid.build({}, plain), tmp_path / "none.png") is None  # old records: no figure
    with_curves = [{**rec, "curves": {"val/score": [[1, 40.0], [2, 50.0]], "train/loss": [[1, 0.7]]}}
                   for rec in plain]
    path = plot_curves(Grid.build({}, with_curves), tmp_path / "curves.png", "t")
    assert path is not None and path.read_bytes().startswith(PNG_MAGIC)
    assert plot_pretrain_curves(pretrain_records(tmp_path), tmp_path / "pre.png") is None
    stage = tmp_path / "pretrain" / "abc123"
    stage.mkdir(parents=True)
    (stage / "record.json").write_text(json.dumps({"name": "p", "task": "lm/wikitext2", "config_hash": "abc123",
                                                   "curves": {"train/loss": [[1, 9.0], [2, 8.0]]}}))
    pre = plot_pretrain_curves(pretrain_records(tmp_path), tmp_path / "pre.png")
    assert pre is not None and pre.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("n", [0, 1])
def test_no_crash_on_empty_tasks(tmp_path: Path, n: int) -> None:
    records = [{"row": "a", "task": "glue/sst2", "seed": s, "metrics": {"val/score": 1.0}, "curves": {}}
               for s in range(n)]
    assert plot_curves(Grid.build({"tasks": ["glue/sst2"]}, records), tmp_path / "c.png") is None
